"""Extending ``fit``: Keras's regularizers and per-sample losses (parity with Keras 3's
``fit``), and your own objective (a gradient penalty, an auxiliary loss on activations)
trained on 8 fake devices exactly as on one."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from forced_devices import forced_cpu_devices
from jaxvision.layers import L1L2, L2, Conv2D, Dense, GlobalAveragePooling2D, add_loss, collect_losses
from jaxvision.models import Sequential
from jaxvision.optimizers import SGD
from jaxvision.train import binary_crossentropy, evaluate, fit

HERE = Path(__file__).resolve().parent


def data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6, 6, 2)).astype(np.float32)
    return x, (x[:, 0, 0, 0] + x[:, 1, 1, 1] > 0).astype(np.float32)


def regularized_net() -> Sequential:
    return Sequential([
        Conv2D(2, 4, 3, activation="relu", kernel_regularizer=L2(0.05), bias_regularizer=L1L2(l1=0.02),
               activity_regularizer=L1L2(l1=0.01), rngs=nnx.Rngs(1)),
        GlobalAveragePooling2D(),
        Dense(4, 1, activation="sigmoid", kernel_regularizer="l1", activity_regularizer=L2(0.03), rngs=nnx.Rngs(2)),
    ])


def keras_twin(keras, model: Sequential):
    layers, regularizers = keras.layers, keras.regularizers
    twin = keras.Sequential([
        keras.Input((6, 6, 2)),
        layers.Conv2D(4, 3, activation="relu", kernel_regularizer=regularizers.L2(0.05),
                      bias_regularizer=regularizers.L1(0.02), activity_regularizer=regularizers.L1(0.01)),
        layers.GlobalAveragePooling2D(),
        layers.Dense(1, activation="sigmoid", kernel_regularizer="l1", activity_regularizer=regularizers.L2(0.03)),
    ])
    twin.layers[0].set_weights([np.asarray(model.conv2d.kernel[...]), np.asarray(model.conv2d.bias[...])])
    twin.layers[2].set_weights([np.asarray(model.dense.kernel[...]), np.asarray(model.dense.bias[...])])
    return twin


def test_regularizers_train_and_validate_like_keras(keras):
    x, y = data()
    model = regularized_net()
    twin = keras_twin(keras, model)
    twin.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    theirs = twin.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(x[:20], y[:20]))
    ours = fit(model, (x, y), epochs=3, loss="binary_crossentropy", optimizer=SGD(0.1), batch_size=16,
               shuffle=False, verbose=0, validation_data=(x[:20], y[:20]))
    for key in ("loss", "val_loss"):  # both include the penalties, as in Keras
        np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=1e-5)
    np.testing.assert_allclose(model.conv2d.kernel[...], twin.layers[0].kernel.value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.dense.kernel[...], twin.layers[2].kernel.value, rtol=1e-5, atol=1e-6)
    # evaluate() scores the same total as Keras's; frozen, the weight penalties drop out of both.
    np.testing.assert_allclose(evaluate(model, (x, y), loss="binary_crossentropy")["loss"],
                               twin.evaluate(x, y, batch_size=16, verbose=0), rtol=1e-5)
    model.trainable, twin.trainable = False, False
    frozen = evaluate(model, (x, y), loss="binary_crossentropy")["loss"]
    np.testing.assert_allclose(frozen, twin.evaluate(x, y, batch_size=16, verbose=0), rtol=1e-5)
    assert frozen < ours.history["loss"][-1] - 0.01


def test_per_sample_losses_are_averaged_like_keras(keras):
    x, y = data()
    model = Sequential([Conv2D(2, 4, 3, activation="relu", rngs=nnx.Rngs(1)), GlobalAveragePooling2D(),
                        Dense(4, 1, activation="sigmoid", rngs=nnx.Rngs(2))])
    twin = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])
    twin.set_weights([np.asarray(v) for v in (model.conv2d.kernel[...], model.conv2d.bias[...],
                                              model.dense.kernel[...], model.dense.bias[...])])

    def absolute_error(y_true, y_pred):  # shape (N,): one value per sample
        return jnp.abs(jnp.ravel(y_true) - jnp.ravel(y_pred))

    twin.compile(optimizer=keras.optimizers.SGD(0.1), loss=absolute_error)
    theirs = twin.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ours = fit(model, (x, y), epochs=2, loss=absolute_error, optimizer=SGD(0.1), batch_size=16, shuffle=False,
               verbose=0)
    np.testing.assert_allclose(ours.history["loss"], theirs.history["loss"], rtol=1e-5)


def test_add_loss_counts_only_at_the_collecting_level():
    def forward(x):
        add_loss(jnp.sum(x))
        return 2 * x

    with collect_losses() as losses:
        y = forward(jnp.ones(3))
        jax.grad(lambda v: forward(v).sum())(jnp.ones(3))  # nested transform: not collected
    assert [float(v) for v in losses] == [3.0] and float(y.sum()) == 6.0
    forward(jnp.ones(3))  # outside a collector: nothing to do


def test_objective_validates_with_the_loss_and_logs_its_own_training_loss():
    x, y = data()

    def doubled(model, x, y, key):
        y_pred = model(x)
        return 2.0 * binary_crossentropy(y, y_pred), y_pred

    model = Sequential([Conv2D(2, 4, 3, activation="relu", rngs=nnx.Rngs(1)), GlobalAveragePooling2D(),
                        Dense(4, 1, activation="sigmoid", rngs=nnx.Rngs(2))])
    history = fit(model, (x, y), epochs=1, loss="binary_crossentropy", objective=doubled, optimizer=SGD(0.0),
                  batch_size=48, verbose=0, validation_data=(x, y))
    # Learning rate 0: one step on the full batch, so the logged loss is exactly twice val_loss.
    np.testing.assert_allclose(history.history["loss"][0], 2 * history.history["val_loss"][0], rtol=1e-6)


@pytest.fixture(scope="module")
def eight_device_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("objectives")
    subprocess.run([sys.executable, str(HERE / "objectives_run.py"), str(out)], env=forced_cpu_devices(8), check=True,
                   timeout=600)
    return json.loads((out / "result.json").read_text())


@pytest.mark.parametrize("example", ["gradient_penalty", "auxiliary_loss"])
def test_custom_objectives_train_on_eight_devices_as_on_one(eight_device_runs, example):
    result = eight_device_runs[example]
    assert result["devices"] == [8, 1]
    eight, one = (np.asarray(w) for w in result["weights"])
    np.testing.assert_allclose(eight, one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["loss"][0], result["loss"][1], rtol=1e-5)
    assert result["penalty_share"] > 0.01  # the extra term is a real part of the loss
    assert not np.allclose(eight, result["initial"], atol=1e-4)  # and training moved the weights
