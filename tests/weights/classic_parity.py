"""Keras 3 twins of the classic applications on Keras-written random weights, shared by
``test_classic_import.py`` (one constructor per family, small inputs) and
``bench/applications_parity_classic.py`` (all 13).

A twin is built by ``keras.applications`` with fast NumPy glorot-uniform kernels (Keras's own
initialisers compile one random program per kernel shape, minutes for the Inception
families), its biases and BatchNormalization tensors randomised by ``keras_files.randomise``,
and written by Keras's own writers as a legacy ``.h5`` and a ``.weights.h5``. Its outputs are
computed once, jitted, in inference mode and with batch statistics (``training=True``).
"""

import contextlib
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx

from keras_files import randomise, write_legacy_h5


class Twin(NamedTuple):
    model: Any  # the Keras model
    legacy_h5: Path
    weights_h5: Path
    x: np.ndarray
    inference: np.ndarray
    training: np.ndarray
    layers: dict[str, np.ndarray] | None  # every layer's output in inference mode, when asked for


@contextlib.contextmanager
def numpy_glorot_kernels(seed: int):
    """Keras's glorot-uniform (``VarianceScaling``) initialisers drawn in NumPy while inside."""
    from keras.src.initializers.random_initializers import VarianceScaling

    rng = np.random.default_rng(seed)
    original = VarianceScaling.__call__

    def draw(self, shape, dtype=None):
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        limit = np.sqrt(6.0 / ((shape[-2] + shape[-1]) * receptive))
        return rng.uniform(-limit, limit, tuple(shape)).astype(np.float32)

    VarianceScaling.__call__ = draw
    try:
        yield
    finally:
        VarianceScaling.__call__ = original


def keras_twin(keras, name: str, size: int, folder: Path, *, batch: int = 2, seed: int = 0,
               layers: bool = False) -> Twin:
    """``keras.applications.<name>`` at ``size``² with the top, its two weight files and outputs.
    ``layers``: compute them with ``debug.compare``'s layer-by-layer passes (compiled once per
    mode, then reused by ``compare`` on this model) and keep every layer's inference output."""
    keras.backend.clear_session()
    with numpy_glorot_kernels(seed):
        model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    randomise(model, seed=seed)
    legacy, v3 = folder / f"{name}.h5", folder / f"{name}.weights.h5"
    write_legacy_h5(keras, model, legacy)
    model.save_weights(v3)
    x = np.random.default_rng(seed + 1).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    if layers:
        from jaxvision.debug.compare import keras_intermediates

        every = keras_intermediates(model)(x)
        training = keras_intermediates(model, training=True)(x)["output"]
        return Twin(model, legacy, v3, x, every["output"], training, every)

    @jax.jit
    def both_modes(trainable, non_trainable, x):
        return tuple(model.stateless_call(trainable, non_trainable, x, training=training)[0]
                     for training in (False, True))

    inference, training = both_modes([v.value for v in model.trainable_variables],
                                     [v.value for v in model.non_trainable_variables], x)
    return Twin(model, legacy, v3, x, np.asarray(inference), np.asarray(training), None)


def jaxvision_outputs(model: nnx.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s outputs in inference mode and with batch statistics, from one jit."""
    model.eval()
    inference_graph, state = nnx.split(model)
    model.train()
    training_graph, _ = nnx.split(model)
    model.eval()

    @jax.jit
    def both_modes(state, x):
        return nnx.merge(inference_graph, state)(x), nnx.merge(training_graph, state)(x)

    return tuple(np.asarray(y) for y in both_modes(state, x))


def max_relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """``max |ours - theirs| / max |theirs|``: relative to the output's scale, so that entries
    that happen to be near zero (a tiny probability) do not divide by nothing."""
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
