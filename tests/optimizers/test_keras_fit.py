"""Keras-exact optimizers: jaxvision's ``fit`` follows Keras 3's ``fit`` weight for weight.

A tiny convnet with BatchNormalization trains for a few epochs in both frameworks from the
same weights, on the same unshuffled batches; every parameter and moving statistic must
agree to ~1e-5 at the end. Each option is also checked step by step against Keras's
optimizer on the same gradients, which is cheaper than a fit.
"""

import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.layers import Activation, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D
from jaxvision.models import Sequential
from jaxvision.optimizers import SGD, Adam, RMSprop, get_optimizer
from jaxvision.train import fit

EPOCHS, BATCH_SIZE = 3, 16


def bn_convnet() -> Sequential:
    return Sequential([Conv2D(1, 4, 3, use_bias=False, rngs=nnx.Rngs(1)), BatchNormalization(4, rngs=nnx.Rngs(0)),
                       Activation("relu"), GlobalAveragePooling2D(), Dense(4, 3, activation="softmax", rngs=nnx.Rngs(2))])


def keras_bn_convnet(keras, model: Sequential):
    layers = keras.layers
    twin = keras.Sequential([keras.Input((6, 6, 1)), layers.Conv2D(4, 3, use_bias=False), layers.BatchNormalization(),
                             layers.Activation("relu"), layers.GlobalAveragePooling2D(),
                             layers.Dense(3, activation="softmax")])
    # Keras's weight order per layer.
    order = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
    for layer, name in zip(twin.layers, model.layer_names, strict=True):
        ours = getattr(model, name)
        if layer.weights:
            layer.set_weights([np.asarray(getattr(ours, n)[...]) for n in order if getattr(ours, n, None) is not None])
    return twin


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6, 6, 1)).astype(np.float32) * 2 + 1
    return x, rng.integers(0, 3, size=48).astype(np.int32)


def keras_weights(model) -> list[np.ndarray]:
    return [np.asarray(w.value) for w in model.weights]


def fitted_pair(keras, ours, theirs):
    """Weights (in Keras's order) after fitting with jaxvision's and with Keras's optimizer."""
    x, y = data()
    model = bn_convnet()
    twin = keras_bn_convnet(keras, model)
    twin.compile(optimizer=theirs, loss="sparse_categorical_crossentropy")
    twin.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0)
    fit(model, (x, y), epochs=EPOCHS, loss="sparse_categorical_crossentropy", optimizer=ours,
        batch_size=BATCH_SIZE, shuffle=False, verbose=0)
    reference = keras_bn_convnet(keras, model)  # our final weights, in Keras's layout
    return keras_weights(reference), keras_weights(twin)


FIT_CASES = [  # Keras's strings (Keras's defaults) through fit's string argument, and Nesterov momentum
    ("adam", lambda k: "adam", lambda: "adam"),
    ("rmsprop", lambda k: "rmsprop", lambda: "rmsprop"),
    ("sgd_nesterov", lambda k: k.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
     lambda: SGD(0.05, momentum=0.9, nesterov=True)),
]


@pytest.mark.parametrize("ours, theirs", [(c[2], c[1]) for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_fit_ends_with_keras_weights(keras, ours, theirs):
    got, expected = fitted_pair(keras, ours(), theirs(keras))
    initial = keras_weights(keras_bn_convnet(keras, bn_convnet()))
    assert len(got) == len(expected) == 7
    for i, (a, b, start) in enumerate(zip(got, expected, initial)):
        assert not np.allclose(b, start, atol=1e-4), f"weight {i} did not move, so it tests nothing"
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"weight {i}")


STEP_CASES = [  # every option, step by step against Keras's optimizer on the same gradients
    ("adam", lambda k: k.optimizers.Adam(), lambda: Adam()),
    ("adam_amsgrad", lambda k: k.optimizers.Adam(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-4, amsgrad=True),
     lambda: Adam(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-4, amsgrad=True)),
    ("adam_schedule", lambda k: k.optimizers.Adam(k.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)),
     lambda: Adam(optax.exponential_decay(0.02, 2, 0.5))),
    ("rmsprop", lambda k: k.optimizers.RMSprop(), lambda: RMSprop()),
    ("rmsprop_momentum_centered", lambda k: k.optimizers.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True),
     lambda: RMSprop(0.01, rho=0.8, momentum=0.5, centered=True)),
    ("sgd", lambda k: k.optimizers.SGD(), lambda: SGD()),
    ("sgd_momentum", lambda k: k.optimizers.SGD(0.05, momentum=0.9), lambda: SGD(0.05, momentum=0.9)),
]


def gradients(steps: int, scale: float) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    return [{"a": (rng.normal(size=(3, 2)) * scale).astype(np.float32),
             "b": (rng.normal(size=5) * scale).astype(np.float32)} for _ in range(steps)]


def trajectories(keras, ours, theirs, grads):
    """Parameters after each step, with our transformation and with Keras's optimizer."""
    params = {"a": np.ones((3, 2), np.float32), "b": np.linspace(-1, 1, 5, dtype=np.float32)}
    variables = [keras.Variable(params[k]) for k in sorted(params)]
    theirs.build(variables)
    state, ours_steps, theirs_steps = ours.init(params), [], []
    for g in grads:
        updates, state = ours.update(g, state, params)
        params = optax.apply_updates(params, updates)
        theirs.apply([g[k] for k in sorted(g)], variables)
        ours_steps.append([np.asarray(params[k]) for k in sorted(params)])
        theirs_steps.append([np.asarray(v.value) for v in variables])
    return ours_steps, theirs_steps


# Gradients of 1e-6 too for the optimizers with an ε, where its placement matters.
STEP_PARAMS = [pytest.param(c[2], c[1], scale, id=f"{c[0]}-{scale:g}") for c in STEP_CASES
               for scale in ((1.0,) if c[0].startswith("sgd") else (1.0, 1e-6))]


@pytest.mark.parametrize("ours, theirs, scale", STEP_PARAMS)
def test_each_step_matches_keras(keras, ours, theirs, scale):
    ours_steps, theirs_steps = trajectories(keras, ours(), theirs(keras), gradients(6, scale))
    for step, (a, b) in enumerate(zip(ours_steps, theirs_steps)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
    assert np.abs(theirs_steps[-1][0] - 1.0).min() > 0, "the parameters did not move, so this tests nothing"


def test_optax_adam_is_not_keras_adam(keras):
    """The difference the exact Adam removes: optax adds ε after bias correction, which
    for gradients of ~1e-6 makes its first step ~4× Keras's."""
    grads = [{"a": np.full((3, 2), 1e-6, np.float32), "b": np.full(5, -1e-6, np.float32)}]
    exact, keras_steps = trajectories(keras, Adam(), keras.optimizers.Adam(), grads)
    optax_steps, _ = trajectories(keras, optax.adam(1e-3, eps=1e-7), keras.optimizers.Adam(), grads)
    keras_move, optax_move = (1.0 - keras_steps[0][0]), (1.0 - optax_steps[0][0])
    np.testing.assert_allclose(1.0 - exact[0][0], keras_move, rtol=1e-4)
    # Keras's step: lr/(1 + ε/(g·√(1−β₂))) = lr/4.16; optax's: lr/(1 + ε/g) = lr/1.1.
    np.testing.assert_allclose(optax_move / keras_move, 4.162 / 1.1, rtol=1e-3)


def test_get_optimizer_names_and_errors():
    assert get_optimizer("Adam") is get_optimizer("adam")  # shared object: fits share compilations
    transformation = SGD()
    assert get_optimizer(transformation) is transformation
    with pytest.raises(ValueError, match=r"optimizer: expected one of \['adam', 'rmsprop', 'sgd'\].*'adamw'"):
        get_optimizer("adamw")
    with pytest.raises(ValueError, match=r"momentum must be a float in \[0, 1\], got 1.5"):
        SGD(momentum=1.5)
