"""Conv2DTranspose: Keras's padding rule and output shapes, Keras parity (output_padding,
dilation, "same" on odd sizes), equality with a Conv2D input-gradient, gradients,
initialisation, input errors; the sub-pixel (phase) form against the input-dilated form."""

import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import Conv2D, Conv2DTranspose
from jaxvision.layers.conv_transpose import (conv_transpose, conv_transpose_dilated, conv_transpose_phases,
                                              transpose_padding)
from layer_checks import check_layer_grads, fast_rngs

# (kernel_size, strides, padding, output_padding, dilation_rate, (height, width)): odd/even
# sizes and kernels, a stride larger than the kernel (default output_padding = s - k), explicit
# output_padding with both paddings, per-axis values, dilation with both paddings, 1x1 kernels.
GRID = [
    (3, 1, "valid", None, 1, (5, 4)),
    (3, 2, "valid", None, 1, (4, 5)),
    (2, 3, "valid", None, 1, (4, 3)),
    (3, 2, "same", None, 1, (5, 4)),
    (4, 2, "same", None, 1, (3, 5)),
    (3, 2, "same", 1, 1, (5, 5)),
    (3, 3, "valid", (2, 1), 1, (3, 4)),
    ((3, 2), (2, 1), "same", (1, 0), 1, (4, 5)),
    (5, 2, "same", 0, 1, (4, 4)),
    (3, 1, "same", None, 2, (5, 6)),
    ((2, 3), 1, "valid", None, (2, 2), (4, 4)),
    (1, 2, "same", None, 1, (3, 3)),
]


def test_padding_rule_matches_keras_jax_backend():
    from keras.src.backend.common.backend_utils import compute_conv_transpose_padding_args_for_jax

    checked = 0
    for kernel, stride, dilation, padding in itertools.product(range(1, 6), range(1, 4), (1, 2), ("valid", "same")):
        if stride > 1 and dilation > 1:
            continue
        for output_padding in (None, *range(stride)):
            expected = compute_conv_transpose_padding_args_for_jax(
                (1, 8, 1), (kernel, 1, 1), stride, padding, output_padding, dilation)[0]
            assert transpose_padding(kernel, stride, dilation, padding, output_padding) == tuple(expected)
            checked += 1
    assert checked == 110


def test_output_shapes_match_keras(keras):
    # Shapes only, over a wider grid than the parity test: built and called abstractly inside
    # jax.eval_shape, so nothing is initialised or compiled.
    for kernel, stride, padding, size in itertools.product((1, 2, 3, 4), (1, 2, 3), ("valid", "same"), (4, 5)):
        for output_padding in (None, *range(stride)):
            def output(x):
                return Conv2DTranspose(2, 3, kernel, stride, padding, output_padding=output_padding, rngs=nnx.Rngs(0))(x)

            shape = jax.eval_shape(output, jax.ShapeDtypeStruct((1, size, size + 1, 2), jnp.float32)).shape
            reference = keras.layers.Conv2DTranspose(3, kernel, stride, padding, output_padding)
            assert shape == tuple(reference.compute_output_shape((1, size, size + 1, 2)))
            if output_padding is None:  # the documented defaults
                assert shape[1] == ((size - 1) * stride + max(kernel, stride) if padding == "valid" else size * stride)


@pytest.mark.parametrize("kernel, strides, padding, output_padding, dilation, size", GRID)
def test_keras_parity(keras, kernel, strides, padding, output_padding, dilation, size):
    rng = np.random.default_rng(0)
    layer = Conv2DTranspose(3, 4, kernel, strides, padding, dilation, output_padding=output_padding,
                            activation="tanh", rngs=fast_rngs())
    layer.bias[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
    x = rng.normal(size=(2, *size, 3)).astype(np.float32)
    reference = keras.layers.Conv2DTranspose(4, kernel, strides, padding, output_padding,
                                             dilation_rate=dilation, activation="tanh",
                                             kernel_initializer="zeros")  # overwritten below
    reference.build(x.shape)
    reference.set_weights([np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])])
    y = nnx.jit(lambda layer, x: layer(x))(layer, jnp.asarray(x))
    expected = np.asarray(reference(x))
    assert y.shape == expected.shape == tuple(reference.compute_output_shape(x.shape))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_is_the_input_gradient_of_a_strided_conv(padding):
    # Conv2D(3 -> 4) maps (1, 8, 8, 3) to (1, 3 or 4, ., 4); its input-gradient maps back with
    # the same (kh, kw, 3, 4) kernel, which is Conv2DTranspose(4 -> 3)'s (kh, kw, filters, in).
    conv = Conv2D(3, 4, 3, strides=2, padding=padding, use_bias=False, rngs=fast_rngs())
    up = Conv2DTranspose(4, 3, 3, strides=2, padding=padding, output_padding=1 if padding == "valid" else None,
                         use_bias=False, rngs=fast_rngs())
    up.kernel[...] = conv.kernel[...]
    x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 8, 8, 3)), jnp.float32)
    y, vjp = jax.vjp(conv, x)
    cotangent = jnp.asarray(np.random.default_rng(2).normal(size=y.shape), jnp.float32)
    np.testing.assert_allclose(np.asarray(up(cotangent)), np.asarray(vjp(cotangent)[0]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, padding, output_padding, dilation", [(2, "same", 1, 1), (1, "valid", None, 2)])
def test_gradients_wrt_input_and_params(x64, strides, padding, output_padding, dilation):
    layer = Conv2DTranspose(2, 3, 3, strides, padding, dilation, output_padding=output_padding, activation="tanh",
                            rngs=fast_rngs())
    check_layer_grads(layer, (1, 4, 3, 2), seed=2)


def test_glorot_uniform_kernel_and_zero_bias(keras):
    # Kernel (kh, kw, filters, in): Keras's fans are (filters·kh·kw, in·kh·kw).
    limit = math.sqrt(6 / ((64 + 32) * 4 * 4))
    mine = Conv2DTranspose(32, 64, 4, rngs=nnx.Rngs(0))
    theirs = keras.layers.Conv2DTranspose(64, 4)
    theirs.build((None, 8, 8, 32))
    for kernel in (np.asarray(mine.kernel[...]), np.asarray(theirs.kernel)):
        assert kernel.shape == (4, 4, 64, 32)
        assert 0.99 * limit < np.abs(kernel).max() <= limit
        np.testing.assert_allclose(kernel.std(), limit / math.sqrt(3), rtol=0.03)
    np.testing.assert_array_equal(np.asarray(mine.bias[...]), np.zeros(64))


def test_rejects_bad_input_and_arguments():
    layer = Conv2DTranspose(3, 4, 3, rngs=nnx.Rngs(0), name="up1")
    with pytest.raises(ValueError, match=r"Conv2DTranspose 'up1': expected input of rank 4 .*got shape \(8, 8, 3\)"):
        layer(jnp.ones((8, 8, 3)))
    with pytest.raises(ValueError, match=r"Conv2DTranspose 'up1': expected 3 input channels .*shape \(1, 8, 8, 4\)"):
        layer(jnp.ones((1, 8, 8, 4)))
    with pytest.raises(ValueError, match=r"Conv2DTranspose 'up1': expected a floating-point input, got dtype int32"):
        layer(jnp.ones((1, 8, 8, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"Conv2DTranspose: padding must be one of \('valid', 'same'\), got 'full'"):
        Conv2DTranspose(3, 4, 3, padding="full", rngs=nnx.Rngs(0))
    too_big = r"Conv2DTranspose: output_padding must be strictly less than strides .*output_padding="
    with pytest.raises(ValueError, match=too_big + r"\(2, 2\) with strides=\(2, 2\)"):
        Conv2DTranspose(3, 4, 3, strides=2, output_padding=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=too_big + r"\(0, 1\) with strides=\(1, 1\)"):
        Conv2DTranspose(3, 4, 3, output_padding=(0, 1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv2DTranspose: output_padding must be a non-negative int or a pair"):
        Conv2DTranspose(3, 4, 3, strides=2, output_padding=-1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv2DTranspose: strides > 1 cannot be combined with dilation_rate > 1"):
        Conv2DTranspose(3, 4, 3, strides=2, dilation_rate=2, rngs=nnx.Rngs(0))


# (kernel_size, strides, padding, output_padding, (height, width)) for the sub-pixel form: strides
# below, equal to and above the kernel, per-axis values, both paddings, explicit output_padding.
PHASE_GRID = [
    (3, 2, "same", None, (4, 5)),
    (3, 2, "valid", None, (3, 4)),
    (4, 2, "same", 1, (3, 3)),
    (2, 3, "valid", None, (3, 2)),
    (1, 2, "same", None, (3, 4)),
    ((3, 5), (3, 2), "same", (2, 1), (3, 4)),
    ((2, 3), (2, 3), "valid", (1, 2), (4, 3)),
]


@pytest.mark.parametrize("kernel, strides, padding, output_padding, size", PHASE_GRID)
def test_phase_form_equals_the_dilated_form_values_and_gradients(kernel, strides, padding, output_padding, size):
    kernel, strides, output_padding = (v if isinstance(v, tuple) else (v, v) for v in (kernel, strides, output_padding))
    pads = tuple(transpose_padding(k, s, 1, padding, p) for k, s, p in zip(kernel, strides, output_padding))
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(2, *size, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(*kernel, 4, 3)), jnp.float32)

    def value_and_vjp(conv, cotangent):
        y, vjp = jax.vjp(lambda x, w: conv(x, w, strides, pads), x, w)
        return y, vjp(cotangent)

    value_and_vjp = jax.jit(value_and_vjp, static_argnums=0)
    shape = jax.eval_shape(lambda: conv_transpose_dilated(x, w, strides, pads)).shape
    cotangent = jnp.asarray(rng.normal(size=shape), jnp.float32)
    y, grads = value_and_vjp(conv_transpose_dilated, cotangent)
    y_fast, grads_fast = value_and_vjp(conv_transpose_phases, cotangent)
    assert y_fast.shape == y.shape == shape
    np.testing.assert_allclose(y_fast, y, rtol=1e-5, atol=1e-5)
    for fast, plain in zip(grads_fast, grads, strict=True):
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-4)


def test_phase_form_gradients(x64):
    rng = np.random.default_rng(5)
    x, w = jnp.asarray(rng.normal(size=(1, 3, 4, 2))), jnp.asarray(rng.normal(size=(3, 2, 2, 2)))
    pads = (transpose_padding(3, 2, 1, "same", None), transpose_padding(2, 3, 1, "valid", 1))
    check_grads(jax.jit(lambda x, w: conv_transpose_phases(x, w, (2, 3), pads)), (x, w), order=1,
                modes=("fwd", "rev"))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the sub-pixel form is the CPU path")
def test_cpu_dispatch_never_dilates_the_input():
    x, w = jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 4, 4))
    pads = (transpose_padding(3, 2, 1, "same", None),) * 2

    def dilated_convolutions(fn) -> int:
        step = jax.value_and_grad(lambda x, w: (fn(x, w, (2, 2), pads) ** 2).sum(), argnums=(0, 1))
        return len(re.findall(r"[lr]hs_dilate=", jax.jit(step).lower(x, w).compile().as_text()))

    # Forward (input dilated) and kernel gradient (kernel dilated): what XLA:CPU runs slowly.
    assert dilated_convolutions(conv_transpose_dilated) == 2
    assert dilated_convolutions(conv_transpose) == 0
