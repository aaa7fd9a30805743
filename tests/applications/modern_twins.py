"""Keras-side helpers of the modern-applications parity tests and bench script: random
weights for every tensor Keras writes, both weight formats, and the batch-statistics pass."""

import contextlib
import math

import h5py
import jax
import numpy as np
from flax import nnx

from jaxvision.layers import Dropout, StochasticDepth
from jaxvision.weights.model_layers import keras_layers, layer_variables

# Centre and half-width of the uniform random values per variable name; kernels keep Keras's
# initialisers. Normalization statistics fit [0, 1] pixels (EfficientNet rescales by 1/255 first).
SPREAD = {"gamma": (1.0, 0.2), "moving_variance": (1.0, 0.3), "mean": (0.45, 0.1), "variance": (0.06, 0.02)}


@contextlib.contextmanager
def numpy_initialisers(seed: int = 0):
    """Keras variables initialised from NumPy (LeCun-uniform kernels, zeros elsewhere) while
    models are built: Keras's own initialisers compile one XLA program per tensor shape, which
    costs minutes for a model of hundreds of layers on a shared CPU. The values are random all
    the same, and :func:`randomise_modern` then randomises every non-kernel tensor."""
    from keras.src.backend.jax.core import Variable

    rng = np.random.default_rng(seed)
    original = Variable._initialize_with_initializer

    def initialise(self, initializer):
        shape = tuple(self._shape)
        if len(shape) >= 2 and "int" not in str(self._dtype):
            bound = math.sqrt(3.0 / math.prod(shape[:-1]))
            value = rng.uniform(-bound, bound, shape)
        else:
            value = np.zeros(shape)
        self._initialize(jax.numpy.asarray(value, dtype=self._dtype))

    Variable._initialize_with_initializer = initialise
    try:
        yield
    finally:
        Variable._initialize_with_initializer = original


def randomise_modern(keras_model, seed: int = 0) -> None:
    """Random biases, BatchNorm/LayerNorm/LayerScale/Normalization tensors (nested models too)."""
    rng = np.random.default_rng(seed)
    for w in keras_model.weights:
        name = w.path.rsplit("/", 1)[-1]
        if name in ("kernel", "depthwise_kernel", "pointwise_kernel", "count"):
            continue
        centre, width = SPREAD.get(name, (0.0, 0.1))
        w.assign(rng.uniform(centre - width, centre + width, w.shape).astype(np.float32))
    for layer in keras_model._flatten_layers():
        if hasattr(layer, "finalize_state") and hasattr(layer, "adapt_mean"):
            layer.finalize_state()  # Normalization caches mean/variance when built


def write_both(keras_model, stem: str) -> tuple[str, str]:
    """``stem.h5`` (legacy, Keras's writer) and ``stem.weights.h5`` (Keras 3's ``save_weights``)."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(stem + ".h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)
    keras_model.save_weights(stem + ".weights.h5")
    return stem + ".h5", stem + ".weights.h5"


def keras_outputs(keras_model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Keras's inference output, its training-mode output with dropout switched off (BatchNorm
    on batch statistics) and the moving statistics that pass leaves; one jitted stateless call
    each (eager Keras compiles every operation separately)."""
    for layer in keras_model._flatten_layers():
        if hasattr(layer, "rate"):
            layer.rate = 0.0
        if hasattr(layer, "drop_path_rate"):
            layer.drop_path_rate = 0.0
    trainable = [v.value for v in keras_model.trainable_variables]
    frozen = [v.value for v in keras_model.non_trainable_variables]

    @jax.jit
    def run(x):
        infer, _ = keras_model.stateless_call(trainable, frozen, x, training=False)
        train, updated = keras_model.stateless_call(trainable, frozen, x, training=True)
        return infer, train, updated

    infer, train, updated = run(x)
    return np.asarray(infer), np.asarray(train), [np.asarray(v) for v in updated]


def our_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, nnx.State]:
    """The same three from a jaxvision model: inference, ``model.train()`` with Dropout and
    StochasticDepth inert, and the BatchNorm statistics after it (one jitted call)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, x):
        model = nnx.merge(graphdef, state)
        model.eval()
        infer = model(x)
        model.train()
        for _, node in nnx.iter_modules(model):
            if isinstance(node, Dropout | StochasticDepth):
                node.deterministic = True
        train = model(x)
        return infer, train, nnx.state(model, nnx.BatchStat)

    infer, train, stats = run(state, x)
    return np.asarray(infer), np.asarray(train), stats


def moving_statistics_pairs(model, stats: nnx.State, keras_model, keras_stats: list[np.ndarray]):
    """(ours, Keras's) moving mean and variance after the batch-statistics pass, BatchNorm by
    BatchNorm, matched by layer and variable name; with the number of BatchNorm layers."""
    # By layer and variable name: NASNet's paths carry Keras's name scopes (normal_A_block_0/...).
    keras_moving = {"/".join(v.path.split("/")[-2:]): value
                    for v, value in zip(keras_model.non_trainable_variables, keras_stats)}
    layers = keras_layers(model)
    pairs = []
    for layer_name, layer in layers.items():
        for var_name, _ in layer_variables(layer):
            path = f"{layer_name.split('/')[-1]}/{var_name}"
            if var_name.startswith("moving_") and path in keras_moving:
                ours = stats
                for key in (*layer_name.split("/"), var_name):
                    ours = ours[key]
                pairs.append((np.asarray(ours[...]), keras_moving[path]))
    batchnorms = sum(type(layer).__name__ == "BatchNormalization" for layer in layers.values())
    return pairs, batchnorms
