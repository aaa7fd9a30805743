"""ResidualBlock: structure and parameter counts of DLwP ch. 9's residual convnet, Keras
parity against the book's ``residual_block`` on copied weights, gradients, input errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import Dense, GlobalAveragePooling2D, Rescaling, ResidualBlock
from jaxvision.models.base import Sequential

# (in_channels, filters, pooling): the three cases of the book's residual_block, sharing
# kernel shapes because eager initialisation compiles once per shape.
CASES = [(4, 8, True), (4, 8, False), (8, 8, False)]


def keras_residual_block(layers, x, filters, pooling=False):
    """DLwP ch. 9's ``residual_block``, verbatim, returning its layers for weight copies."""
    residual = x
    conv1 = layers.Conv2D(filters, 3, activation="relu", padding="same")
    conv2 = layers.Conv2D(filters, 3, activation="relu", padding="same")
    x = conv2(conv1(x))
    shortcut = None
    if pooling:
        x = layers.MaxPooling2D(2, padding="same")(x)
        shortcut = layers.Conv2D(filters, 1, strides=2)
    elif filters != residual.shape[-1]:
        shortcut = layers.Conv2D(filters, 1)
    if shortcut is not None:
        residual = shortcut(residual)
    return layers.add([x, residual]), (conv1, conv2, shortcut)


def param_count(module):
    return sum(v.size for v in jax.tree.leaves(nnx.state(module, nnx.Param)))


def test_book_residual_convnet_has_297697_parameters(keras):
    # The book's model: Rescaling, three residual blocks straight on the RGB input, global
    # average pooling and a sigmoid unit. Built abstractly: shapes and counts only.
    def build():
        rngs = nnx.Rngs(0)
        return Sequential([Rescaling(1 / 255), ResidualBlock(3, 32, pooling=True, rngs=rngs),
                           ResidualBlock(32, 64, pooling=True, rngs=rngs), ResidualBlock(64, 128, rngs=rngs),
                           GlobalAveragePooling2D(), Dense(128, 1, activation="sigmoid", rngs=rngs)])

    model = nnx.eval_shape(build)
    shapes = model.layer_shapes((1, 32, 32, 3))
    assert param_count(model) == 297_697

    inputs = keras.Input(shape=(32, 32, 3))
    y = keras.layers.Rescaling(1 / 255)(inputs)
    for name, filters, pooling in [("residual_block", 32, True), ("residual_block_1", 64, True),
                                   ("residual_block_2", 128, False)]:
        y, _ = keras_residual_block(keras.layers, y, filters, pooling)
        assert shapes[name] == (1, *y.shape[1:])
    y = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(y))
    assert shapes["dense"] == (1, 1)
    assert keras.Model(inputs, y).count_params() == 297_697


def test_sub_layers_and_parameter_paths():
    pooled = ResidualBlock(4, 8, pooling=True, rngs=nnx.Rngs(0))
    paths = sorted("/".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(pooled, nnx.Param)))
    assert paths == ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "shortcut/bias", "shortcut/kernel"]
    assert pooled.pool.pool_size == (2, 2) and pooled.pool.padding == "same"
    assert pooled.shortcut.kernel_size == (1, 1) and pooled.shortcut.strides == (2, 2)
    assert pooled.conv1.padding == pooled.conv2.padding == "same"
    widened = ResidualBlock(4, 8, rngs=nnx.Rngs(0))
    assert widened.pool is None and widened.shortcut.strides == (1, 1)
    identity = ResidualBlock(8, 8, rngs=nnx.Rngs(0))
    assert identity.pool is None and identity.shortcut is None


@pytest.mark.parametrize("in_channels, filters, pooling", CASES)
@pytest.mark.parametrize("size", [(6, 6), (7, 5)])  # odd sizes: pooling and stride-2 projection must agree
def test_keras_parity(keras, in_channels, filters, pooling, size):
    block = ResidualBlock(in_channels, filters, pooling, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(0)
    for conv in (block.conv1, block.conv2, block.shortcut):
        if conv is not None:  # non-zero biases, so a dropped bias term would show
            conv.bias[...] = jnp.asarray(rng.normal(size=filters) * 0.1, jnp.float32)
    inputs = keras.Input(shape=(*size, in_channels))
    outputs, (conv1, conv2, shortcut) = keras_residual_block(keras.layers, inputs, filters, pooling)
    reference = keras.Model(inputs, outputs)
    assert reference.count_params() == param_count(block)
    for theirs, mine in [(conv1, block.conv1), (conv2, block.conv2), (shortcut, block.shortcut)]:
        assert (theirs is None) == (mine is None)
        if mine is not None:
            theirs.set_weights([np.asarray(mine.kernel[...]), np.asarray(mine.bias[...])])
    x = rng.normal(size=(2, *size, in_channels)).astype(np.float32)
    y = block(jnp.asarray(x))
    expected = np.asarray(reference(x))
    spatial = tuple(math.ceil(n / 2) for n in size) if pooling else size
    assert y.shape == expected.shape == (2, *spatial, filters)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_channels, filters, pooling", CASES)
def test_gradients_wrt_input_and_params(x64, in_channels, filters, pooling):
    block = ResidualBlock(in_channels, filters, pooling, rngs=nnx.Rngs(2), dtype="float64")
    graphdef, params = nnx.split(block, nnx.Param)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 5, 5, in_channels)))

    def apply(params, x):
        return nnx.merge(graphdef, params)(x)

    assert apply(params, x).dtype == jnp.float64
    # relu and max pooling are piecewise linear, so first order only, and a small step so
    # the finite differences do not cross a kink (float64 keeps them accurate).
    check_grads(apply, (params, x), order=1, modes=("fwd", "rev"), eps=1e-6)


def test_rejects_bad_input():
    block = ResidualBlock(4, 8, rngs=nnx.Rngs(0), name="block1")
    with pytest.raises(ValueError, match=r"ResidualBlock 'block1': expected 4 input channels .*\(1, 8, 8, 3\)"):
        block(jnp.ones((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"ResidualBlock 'block1': expected input of rank 4 .*got shape \(8, 8, 4\)"):
        block(jnp.ones((8, 8, 4)))
    with pytest.raises(ValueError, match=r"ResidualBlock 'block1': expected a floating-point input, got dtype uint8"):
        block(jnp.ones((1, 8, 8, 4), jnp.uint8))
