"""Conv2D: shapes and Keras parity over kernels/strides/paddings/dilations, gradients,
glorot-uniform initialisation, input errors."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.layers import Conv2D
from layer_checks import check_layer_grads, expected_spatial, fast_rngs

# (kernel_size, strides, padding, dilation_rate, (height, width)): odd and even sizes, "same"
# with stride 2 on odd sizes (the extra padding pixel goes bottom/right), non-square kernels
# and strides, dilation with both paddings, a stride larger than the kernel.
GRID = [
    (3, 1, "valid", 1, (8, 7)),
    (3, 1, "same", 1, (7, 7)),
    (3, 2, "same", 1, (7, 9)),
    (4, 2, "same", 1, (8, 7)),
    ((2, 3), (2, 1), "valid", 1, (9, 6)),
    (3, 1, "same", 2, (9, 8)),
    ((3, 2), 1, "valid", (2, 3), (10, 9)),
    (1, 3, "valid", 1, (7, 8)),
]


def test_output_shapes_match_keras(keras):
    # Shapes only, over a wider grid than the parity test: built and called abstractly inside
    # jax.eval_shape, so nothing is initialised or compiled.
    grid = itertools.product((1, 2, 3, 4), ((1, 1), (2, 1), (3, 1), (1, 2)), ("valid", "same"), (7, 8))
    for kernel, (stride, dilation), padding, size in grid:
        def output(x):
            return Conv2D(2, 3, kernel, stride, padding, dilation, rngs=nnx.Rngs(0))(x)

        shape = jax.eval_shape(output, jax.ShapeDtypeStruct((1, size, size + 3, 2), jnp.float32)).shape
        reference = keras.layers.Conv2D(3, kernel, stride, padding, dilation_rate=dilation)
        assert shape == tuple(reference.compute_output_shape((1, size, size + 3, 2)))
        assert shape == (1, *expected_spatial((size, size + 3), kernel, stride, padding, dilation), 3)


@pytest.mark.parametrize("kernel, strides, padding, dilation, size", GRID)
def test_shape_and_keras_parity(keras, kernel, strides, padding, dilation, size):
    rng = np.random.default_rng(0)
    conv = Conv2D(3, 5, kernel, strides, padding, dilation, activation="tanh", rngs=fast_rngs())
    conv.bias[...] = jnp.asarray(rng.normal(size=5), jnp.float32)  # a non-zero bias must match too
    x = rng.normal(size=(2, *size, 3)).astype(np.float32)
    reference = keras.layers.Conv2D(5, kernel, strides, padding, dilation_rate=dilation, activation="tanh",
                                     kernel_initializer="zeros")  # overwritten below
    expected_shape = (2, *expected_spatial(size, kernel, strides, padding, dilation), 5)
    assert tuple(reference.compute_output_shape(x.shape)) == expected_shape
    reference.build(x.shape)
    reference.set_weights([np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])])
    y = nnx.jit(lambda conv, x: conv(x))(conv, jnp.asarray(x))
    expected = np.asarray(reference(x))
    assert y.shape == expected.shape == tuple(reference.compute_output_shape(x.shape))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, padding, dilation", [(2, "same", 1), (1, "valid", 2)])
def test_gradients_wrt_input_and_params(x64, strides, padding, dilation):
    conv = Conv2D(2, 3, 3, strides, padding, dilation, activation="tanh", rngs=fast_rngs())
    check_layer_grads(conv, (1, 7, 6, 2), seed=2)


def test_glorot_uniform_kernel_and_zero_bias(keras):
    # Keras: limit = sqrt(6 / (fan_in + fan_out)), fans = (in, out) channels × kh·kw.
    limit = math.sqrt(6 / ((32 + 64) * 3 * 3))
    mine = np.asarray(Conv2D(32, 64, 3, rngs=nnx.Rngs(0)).kernel[...])
    theirs = keras.layers.Conv2D(64, 3)
    theirs.build((None, 8, 8, 32))
    for kernel in (mine, np.asarray(theirs.kernel)):
        assert kernel.shape == (3, 3, 32, 64)
        assert 0.99 * limit < np.abs(kernel).max() <= limit
        np.testing.assert_allclose(kernel.std(), limit / math.sqrt(3), rtol=0.03)
        assert abs(kernel.mean()) < 0.01 * limit
    np.testing.assert_array_equal(np.asarray(Conv2D(32, 64, 3, rngs=nnx.Rngs(0)).bias[...]), np.zeros(64))


def test_rejects_bad_input_and_arguments():
    conv = Conv2D(3, 4, 3, rngs=nnx.Rngs(0), name="conv1")
    with pytest.raises(ValueError, match=r"Conv2D 'conv1': expected input of rank 4 .*got shape \(8, 8, 3\)"):
        conv(jnp.ones((8, 8, 3)))
    with pytest.raises(ValueError, match=r"Conv2D 'conv1': expected 3 input channels .*got shape \(1, 8, 8, 1\)"):
        conv(jnp.ones((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"Conv2D 'conv1': expected a floating-point input, got dtype int32"):
        conv(jnp.ones((1, 8, 8, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"Conv2D 'conv1': input of spatial size \(2, 8\) is smaller than the "
                                         r"\(dilated\) kernel \(3, 3\) with padding='valid'"):
        conv(jnp.ones((1, 2, 8, 3)))
    with pytest.raises(ValueError, match=r"Conv2D: padding must be one of \('valid', 'same'\), got 'full'"):
        Conv2D(3, 4, 3, padding="full", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv2D: strides > 1 cannot be combined with dilation_rate > 1"):
        Conv2D(3, 4, 3, strides=2, dilation_rate=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv2D: kernel_size must be a positive int or a pair"):
        Conv2D(3, 4, (3, 0), rngs=nnx.Rngs(0))
