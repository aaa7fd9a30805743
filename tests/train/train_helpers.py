"""Tiny models and data for the training tests.

Compilation dominates these tests, so they share one optimizer object and a few model
structures: ``fit`` then reuses its compiled steps across tests.
"""

import numpy as np
from flax import nnx

from jaxvision.layers import BatchNormalization, Dense, Dropout
from jaxvision.models import Sequential
from jaxvision.optimizers import Adam
from jaxvision.train.checkpoint import flat_arrays

OPTIMIZER = Adam(0.05)  # Keras's Adam, so resume tests also round-trip its state


def dropout_bn_net(seed: int = 0) -> Sequential:
    """Dense → BatchNorm → Dropout → softmax: every kind of state fit handles."""
    return Sequential([Dense(2, 8, activation="relu", rngs=nnx.Rngs(seed)), BatchNormalization(8, rngs=nnx.Rngs(0)),
                       Dropout(0.25, rngs=nnx.Rngs(dropout=seed)), Dense(8, 2, activation="softmax", rngs=nnx.Rngs(seed + 1))])


def blobs(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two linearly separable classes: label = (x0 + x1 > 0), with a margin."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int32)
    x += np.where(y[:, None] == 1, 0.3, -0.3).astype(np.float32)
    return x, y


def weights(model: nnx.Module) -> dict[str, np.ndarray]:
    """Parameters and BatchNorm statistics as host arrays, keyed by path."""
    return {k: np.asarray(v) for k, v in flat_arrays(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))).items()}


def assert_same_weights(a: nnx.Module, b: nnx.Module) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def train_kwargs(**overrides) -> dict:
    """The fit arguments shared by the tests (so their compilations are shared too)."""
    kwargs = dict(epochs=3, loss="sparse_categorical_crossentropy", optimizer=OPTIMIZER, metrics=["accuracy"],
                  batch_size=32, verbose=0)
    kwargs.update(overrides)
    return kwargs
