"""Core layers (Dense, Dropout, Rescaling, Activation, Flatten): Keras parity, dropout
statistics and modes, gradients and input errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import Activation, Dense, Dropout, Flatten, Rescaling, get_activation, set_policy
from jaxvision.layers.core import ACTIVATIONS
from layer_checks import training


def normal(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def assert_close(ours, theirs, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=atol)


def check_module_grads(module, x, order):
    """Finite differences wrt the input and every parameter, in float64, on fresh copies
    of the module (so stateful layers replay the same randomness each call)."""
    graphdef, params, rest = nnx.split(set_policy(module, "float64"), nnx.Param, ...)

    def apply(params, x):
        return nnx.merge(graphdef, params, rest, copy=True)(x)

    x = jnp.asarray(x, jnp.float64)
    assert apply(params, x).dtype == jnp.float64
    check_grads(apply, (params, x), order=order, modes=("fwd", "rev"))


# Dense ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, units, activation, use_bias", [
    ((4, 5), 3, None, True),
    ((2, 3, 5), 4, "relu", True),  # Dense maps the last axis of any rank
    ((4, 5), 6, "softmax", False),
])
def test_dense_keras_parity(keras, shape, units, activation, use_bias):
    dense = Dense(shape[-1], units, activation, use_bias, rngs=nnx.Rngs(0))
    if use_bias:
        dense.bias[...] = jnp.asarray(normal((units,), seed=1))
    layer = keras.layers.Dense(units, activation=activation, use_bias=use_bias)
    layer.build(shape)
    layer.set_weights([np.asarray(dense.kernel[...])] + ([np.asarray(dense.bias[...])] if use_bias else []))
    x = normal(shape, seed=2)
    y = dense(jnp.asarray(x))
    assert y.shape == (*shape[:-1], units)
    assert_close(y, layer(x))


def test_dense_initialisation_is_glorot_uniform():
    dense = Dense(300, 200, rngs=nnx.Rngs(0))
    kernel = np.asarray(dense.kernel[...])
    limit = np.sqrt(6 / (300 + 200))
    assert np.abs(kernel).max() <= limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.01 * limit  # std of U(-limit, limit)
    np.testing.assert_array_equal(np.asarray(dense.bias[...]), np.zeros(200))
    assert Dense(3, 2, use_bias=False, rngs=nnx.Rngs(0)).bias is None


@pytest.mark.parametrize("activation, order", [(None, 2), ("tanh", 2), ("relu", 1)])
def test_dense_gradients(x64, activation, order):
    dense = Dense(5, 3, activation, rngs=nnx.Rngs(0))
    check_module_grads(dense, normal((4, 5), seed=3, dtype=np.float64), order)


def test_dense_rejects_bad_input():
    dense = Dense(5, 3, rngs=nnx.Rngs(0), name="head")
    with pytest.raises(ValueError, match=r"Dense 'head': expected 5 input channels .*got shape \(2, 4\)"):
        dense(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Dense 'head': expected a floating-point input, got dtype int32"):
        dense(jnp.ones((2, 5), jnp.int32))
    with pytest.raises(ValueError, match=r"Dense 'head': expected input of rank 2 .*got shape \(5,\)"):
        dense(jnp.ones((5,)))


# Activation ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_keras_parity(keras, name):
    x = normal((3, 7), seed=4) * 3.0
    assert_close(Activation(name)(jnp.asarray(x)), keras.layers.Activation(name)(x))


def test_activation_known_values_and_resolution():
    x = jnp.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(np.asarray(Activation("relu")(x)), [[0.0, 0.0, 3.0]])
    assert_close(Activation("softmax")(x), np.exp([[-2.0, 0.0, 3.0]]) / np.exp([-2.0, 0.0, 3.0]).sum())
    assert get_activation(None)(x) is x
    assert get_activation(jnp.abs) is jnp.abs
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'; known: \['elu', 'gelu'"):
        get_activation("rleu")


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "gelu", "swish", "selu"])
def test_activation_gradients(x64, name):
    check_module_grads(Activation(name), normal((2, 5), seed=5, dtype=np.float64), 2)


# Rescaling -----------------------------------------------------------------------------

def test_rescaling_keras_parity_and_known_values(keras):
    x = normal((2, 4, 4, 3), seed=6) * 100.0
    for scale, offset in [(1 / 255, 0.0), (1 / 127.5, -1.0)]:
        reference = keras.layers.Rescaling(scale, offset=offset)(x)
        assert_close(Rescaling(scale, offset)(jnp.asarray(x)), reference)
    pixels = np.array([[0, 51, 255]], np.uint8)
    y = Rescaling(1 / 255)(jnp.asarray(pixels))
    assert y.dtype == jnp.float32  # uint8 images are cast, as in Keras
    assert_close(y, [[0.0, 0.2, 1.0]])
    assert_close(y, keras.layers.Rescaling(1 / 255)(pixels))


def test_rescaling_gradients(x64):
    check_module_grads(Rescaling(1 / 127.5, offset=-1.0), normal((2, 3, 3, 1), seed=7, dtype=np.float64), 2)


# Flatten -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (3, 5), (5,), (0, 3, 3, 4)])
def test_flatten_keras_parity(keras, shape):
    x = normal(shape, seed=8)
    y = Flatten()(jnp.asarray(x))
    reference = np.asarray(keras.layers.Flatten()(x))
    assert y.shape == reference.shape
    np.testing.assert_array_equal(np.asarray(y), reference)


def test_flatten_is_row_major():
    x = jnp.arange(8.0).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(np.asarray(Flatten()(x)), [np.arange(8.0)])


def test_flatten_gradients(x64):
    check_module_grads(Flatten(), normal((2, 2, 3, 2), seed=9, dtype=np.float64), 2)


# Dropout -------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_rate_and_scaling(rate):
    y = np.asarray(training(Dropout(rate, rngs=nnx.Rngs(0)))(jnp.ones((400, 500))))
    dropped = y == 0.0
    # 200,000 Bernoulli draws: the standard deviation of the fraction is about 0.001.
    assert abs(dropped.mean() - rate) < 0.01
    # Every kept unit is scaled by exactly 1 / (1 - rate), so the expected sum is unchanged.
    np.testing.assert_array_equal(np.unique(y[~dropped]), [np.float32(1.0 / (1.0 - rate))])


def test_dropout_matches_keras_on_the_same_key(keras):
    from keras.src.backend.jax.random import dropout as keras_dropout

    x = normal((8, 16), seed=11)
    ours = training(Dropout(0.3, rngs=nnx.Rngs(dropout=7)))(jnp.asarray(x))
    key = nnx.Rngs(dropout=7).dropout()  # the key the layer's first call draws
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(keras_dropout(jnp.asarray(x), 0.3, seed=key)))


def test_dropout_draws_a_new_mask_per_call_and_is_identity_in_eval():
    drop = Dropout(0.5, rngs=nnx.Rngs(0))
    x = jnp.ones((64, 64))
    assert drop.deterministic is True and drop(x) is x  # inference mode until train(), as in Keras
    drop.train()
    first, second = np.asarray(drop(x)), np.asarray(drop(x))
    assert not np.array_equal(first == 0, second == 0)
    drop.eval()
    assert drop.deterministic is True
    assert drop(x) is x
    drop.train()
    assert (np.asarray(drop(x)) == 0).any()
    assert Dropout(0.0, rngs=nnx.Rngs(0))(x) is x


def test_dropout_gradients(x64):
    # Each call of the copied module draws the same mask, so the layer is a fixed linear map.
    check_module_grads(training(Dropout(0.4, rngs=nnx.Rngs(0))), normal((3, 6), seed=12, dtype=np.float64), 2)


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_dropout_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\)"):
        Dropout(rate, rngs=nnx.Rngs(0))
