"""DepthwiseConv2D and SeparableConv2D: shapes and Keras parity, the CPU fast path against the
grouped convolution (values, gradients, dispatch), gradients, initialisation, input errors."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import DepthwiseConv2D, SeparableConv2D
from jaxvision.layers.separable import MAX_SHIFTED_TAPS, depthwise_conv, depthwise_conv_lax, depthwise_conv_shifted
from layer_checks import check_layer_grads, expected_spatial, fast_rngs

# (kernel_size, strides, padding, depth_multiplier, dilation_rate, (height, width)): odd/even
# sizes, "same" with stride 2 on odd sizes, depth_multiplier > 1 (channel order c*M + m),
# dilation with both paddings, non-square kernels/strides, and strides with dilation (Keras
# allows both at once for depthwise convolutions).
GRID = [
    (3, 1, "valid", 1, 1, (8, 7)),
    (3, 1, "same", 2, 1, (7, 7)),
    (3, 2, "same", 1, 1, (7, 9)),
    (4, 2, "same", 3, 1, (8, 7)),
    ((2, 3), (2, 1), "valid", 2, 1, (9, 6)),
    (3, 1, "same", 1, 2, (9, 8)),
    ((3, 2), 1, "valid", 2, (2, 3), (10, 9)),
    (3, 2, "same", 2, 2, (9, 9)),
]


@pytest.mark.parametrize("layer_cls", [DepthwiseConv2D, SeparableConv2D])
def test_output_shapes_match_keras(keras, layer_cls):
    # Shapes only, over a wider grid than the parity test: built and called abstractly inside
    # jax.eval_shape, so nothing is initialised or compiled.
    extra = (4,) if layer_cls is SeparableConv2D else ()  # filters
    grid = itertools.product((1, 2, 3), ((1, 1), (2, 1), (1, 2), (2, 2)), ("valid", "same"), (1, 2), (7, 8))
    for kernel, (stride, dilation), padding, multiplier, size in grid:
        def output(x):
            return layer_cls(2, *extra, kernel, stride, padding, dilation, depth_multiplier=multiplier,
                             rngs=nnx.Rngs(0))(x)

        shape = jax.eval_shape(output, jax.ShapeDtypeStruct((1, size, size + 3, 2), jnp.float32)).shape
        reference = getattr(keras.layers, layer_cls.__name__)(*extra, kernel, stride, padding,
                                                              depth_multiplier=multiplier, dilation_rate=dilation)
        assert shape == tuple(reference.compute_output_shape((1, size, size + 3, 2)))
        channels = extra[0] if extra else 2 * multiplier
        assert shape == (1, *expected_spatial((size, size + 3), kernel, stride, padding, dilation), channels)


@pytest.mark.parametrize("kernel, strides, padding, multiplier, dilation, size", GRID)
def test_depthwise_shape_and_keras_parity(keras, kernel, strides, padding, multiplier, dilation, size):
    rng = np.random.default_rng(0)
    layer = DepthwiseConv2D(3, kernel, strides, padding, dilation, depth_multiplier=multiplier, activation="tanh",
                            rngs=fast_rngs())
    layer.bias[...] = jnp.asarray(rng.normal(size=3 * multiplier), jnp.float32)
    x = rng.normal(size=(2, *size, 3)).astype(np.float32)
    reference = keras.layers.DepthwiseConv2D(kernel, strides, padding, multiplier, dilation_rate=dilation,
                                             activation="tanh", depthwise_initializer="zeros")
    reference.build(x.shape)
    reference.set_weights([np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])])
    y = nnx.jit(lambda layer, x: layer(x))(layer, jnp.asarray(x))
    expected = np.asarray(reference(x))
    assert y.shape == expected.shape == (2, *expected_spatial(size, kernel, strides, padding, dilation), 3 * multiplier)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, strides, padding, multiplier, dilation, size", GRID[1::2])
@pytest.mark.parametrize("use_bias", [True, False])
def test_separable_shape_and_keras_parity(keras, kernel, strides, padding, multiplier, dilation, size, use_bias):
    rng = np.random.default_rng(1)
    layer = SeparableConv2D(3, 4, kernel, strides, padding, dilation, depth_multiplier=multiplier, activation="relu",
                            use_bias=use_bias, rngs=fast_rngs())
    weights = [layer.depthwise_kernel[...], layer.pointwise_kernel[...]]
    if use_bias:
        layer.bias[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
        weights.append(layer.bias[...])
    x = rng.normal(size=(2, *size, 3)).astype(np.float32)
    reference = keras.layers.SeparableConv2D(4, kernel, strides, padding, dilation_rate=dilation,
                                             depth_multiplier=multiplier, activation="relu", use_bias=use_bias,
                                             depthwise_initializer="zeros", pointwise_initializer="zeros")
    reference.build(x.shape)
    reference.set_weights([np.asarray(w) for w in weights])
    y = nnx.jit(lambda layer, x: layer(x))(layer, jnp.asarray(x))
    expected = np.asarray(reference(x))
    assert y.shape == expected.shape == (2, *expected_spatial(size, kernel, strides, padding, dilation), 4)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, strides, padding, multiplier, dilation, size", GRID[::3])
def test_fast_path_equals_grouped_conv_values_and_gradients(kernel, strides, padding, multiplier, dilation, size):
    rng = np.random.default_rng(2)
    kernel_shape = (*((kernel, kernel) if isinstance(kernel, int) else kernel), 5, multiplier)
    w = jnp.asarray(rng.normal(size=kernel_shape), jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, *size, 5)), jnp.float32)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    args = (pair(strides), padding, pair(dilation))

    @functools.partial(jax.jit, static_argnums=0)
    def value_and_vjp(conv, cotangent):
        y, vjp = jax.vjp(lambda x, w: conv(x, w, *args), x, w)
        return y, vjp(cotangent)

    shape = jax.eval_shape(lambda: depthwise_conv_lax(x, w, *args)).shape
    cotangent = jnp.asarray(rng.normal(size=shape), jnp.float32)
    y_lax, grads_lax = value_and_vjp(depthwise_conv_lax, cotangent)
    y_fast, grads_fast = value_and_vjp(depthwise_conv_shifted, cotangent)
    assert y_fast.shape == y_lax.shape == shape
    np.testing.assert_allclose(np.asarray(y_fast), np.asarray(y_lax), rtol=1e-5, atol=1e-5)
    for fast, plain in zip(grads_fast, grads_lax):
        np.testing.assert_allclose(np.asarray(fast), np.asarray(plain), rtol=1e-5, atol=1e-4)


def test_fast_path_gradients(x64):
    rng = np.random.default_rng(3)
    x, w = jnp.asarray(rng.normal(size=(1, 7, 6, 2))), jnp.asarray(rng.normal(size=(3, 2, 2, 2)))
    for args in [((2, 1), "same", (1, 1)), ((1, 1), "valid", (2, 2))]:
        conv = jax.jit(lambda x, w, args=args: depthwise_conv_shifted(x, w, *args))
        check_grads(conv, (x, w), order=1, modes=("fwd", "rev"))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the shifted sum is the CPU path")
def test_cpu_dispatch_avoids_grouped_conv_for_small_kernels():
    def compiled_hlo(kernel_size):
        x, w = jnp.ones((1, 16, 16, 4)), jnp.ones((kernel_size, kernel_size, 4, 1))
        grad = jax.grad(lambda x, w: depthwise_conv(x, w, padding="same").sum(), argnums=(0, 1))
        return jax.jit(grad).lower(x, w).compile().as_text()

    assert "convolution" not in compiled_hlo(3)
    assert int(math.isqrt(MAX_SHIFTED_TAPS)) ** 2 == MAX_SHIFTED_TAPS  # 12x12 is the first kernel over it
    assert "convolution" in compiled_hlo(math.isqrt(MAX_SHIFTED_TAPS) + 1)


@pytest.mark.parametrize("layer_cls", [DepthwiseConv2D, SeparableConv2D])
def test_gradients_wrt_input_and_params(x64, layer_cls):
    extra = (3,) if layer_cls is SeparableConv2D else ()  # filters
    layer = layer_cls(2, *extra, 3, 2, "same", depth_multiplier=2, activation="tanh", rngs=fast_rngs())
    check_layer_grads(layer, (1, 5, 6, 2), seed=5)


def test_glorot_uniform_kernels_and_zero_bias(keras):
    # Keras's fans for a (kh, kw, a, b) kernel are (a·kh·kw, b·kh·kw), depthwise kernels included.
    depthwise_limit = math.sqrt(6 / ((128 + 2) * 5 * 5))
    pointwise_limit = math.sqrt(6 / (128 * 2 + 64))
    mine = SeparableConv2D(128, 64, 5, depth_multiplier=2, rngs=nnx.Rngs(0))
    theirs = keras.layers.SeparableConv2D(64, 5, depth_multiplier=2)
    theirs.build((None, 8, 8, 128))
    depthwise = DepthwiseConv2D(128, 5, depth_multiplier=2, rngs=nnx.Rngs(0))
    pairs = [(mine.depthwise_kernel[...], theirs.depthwise_kernel, depthwise_limit),
             (depthwise.kernel[...], theirs.depthwise_kernel, depthwise_limit),
             (mine.pointwise_kernel[...], theirs.pointwise_kernel, pointwise_limit)]
    for ours, reference, limit in pairs:
        ours, reference = np.asarray(ours), np.asarray(reference)
        assert ours.shape == reference.shape
        for kernel in (ours, reference):
            assert 0.99 * limit < np.abs(kernel).max() <= limit
            np.testing.assert_allclose(kernel.std(), limit / math.sqrt(3), rtol=0.03)
    np.testing.assert_array_equal(np.asarray(mine.bias[...]), np.zeros(64))
    np.testing.assert_array_equal(np.asarray(depthwise.bias[...]), np.zeros(256))


@pytest.mark.parametrize("layer_cls", [DepthwiseConv2D, SeparableConv2D])
def test_rejects_bad_input_and_arguments(layer_cls):
    kind = layer_cls.__name__
    extra = (4,) if layer_cls is SeparableConv2D else ()
    layer = layer_cls(3, *extra, 3, rngs=nnx.Rngs(0), name="sep1")
    with pytest.raises(ValueError, match=rf"{kind} 'sep1': expected input of rank 4 .*got shape \(8, 8, 3\)"):
        layer(jnp.ones((8, 8, 3)))
    with pytest.raises(ValueError, match=rf"{kind} 'sep1': expected 3 input channels .*got shape \(1, 8, 8, 2\)"):
        layer(jnp.ones((1, 8, 8, 2)))
    with pytest.raises(ValueError, match=rf"{kind} 'sep1': expected a floating-point input, got dtype uint8"):
        layer(jnp.ones((1, 8, 8, 3), jnp.uint8))
    with pytest.raises(ValueError, match=rf"{kind} 'sep1': input of spatial size \(2, 8\) is smaller than the"):
        layer(jnp.ones((1, 2, 8, 3)))
    with pytest.raises(ValueError, match=rf"{kind}: padding must be one of \('valid', 'same'\), got 'causal'"):
        layer_cls(3, *extra, 3, padding="causal", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=rf"{kind}: depth_multiplier must be a positive int, got 0"):
        layer_cls(3, *extra, 3, depth_multiplier=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=rf"{kind}: dilation_rate must be a positive int or a pair"):
        layer_cls(3, *extra, 3, rngs=nnx.Rngs(0), dilation_rate=(1, 2, 3))


def test_the_guides_fork_uses_only_the_public_kit_and_computes_separable_then_batchnorm():
    """The own-model guide forks SeparableConv2D (a BatchNormalization after the pointwise step,
    no bias) with names that ``jaxvision.layers`` exports; it computes exactly the layers it
    replaces, and its errors name the fork."""
    import ast

    import jaxvision.layers
    import jaxvision.models
    from jaxvision.layers import BatchNormalization
    from own_layer import fork_module, fork_source

    public = {"jaxvision.layers": jaxvision.layers.__all__, "jaxvision.models": jaxvision.models.__all__}
    imported = [(node.module, alias.name) for node in ast.walk(ast.parse(fork_source()))
                if isinstance(node, ast.ImportFrom) and node.module.startswith("jaxvision")
                for alias in node.names]
    assert ("jaxvision.layers", "configure_depthwise") in imported
    assert all(name in public.get(module, ()) for module, name in imported), imported

    fork = fork_module().SeparableConvBN(3, 4, 3, strides=2, padding="same", activation="relu", rngs=fast_rngs())
    stock = SeparableConv2D(3, 4, 3, strides=2, padding="same", use_bias=False, rngs=fast_rngs())
    stock.depthwise_kernel[...], stock.pointwise_kernel[...] = fork.depthwise_kernel[...], fork.pointwise_kernel[...]
    bn = BatchNormalization(4, rngs=fast_rngs())
    fork.pointwise_bn.moving_variance[...] = bn.moving_variance[...] = jnp.linspace(0.5, 2.0, 4)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 7, 3)), jnp.float32)
    np.testing.assert_allclose(fork(x), jax.nn.relu(bn(stock(x))), rtol=1e-6, atol=1e-6)
    assert fork.kernel_size == (3, 3) and fork.strides == (2, 2) and fork.padding == "same"
    with pytest.raises(ValueError, match="SeparableConvBN: expected 3 input channels"):
        fork(jnp.ones((1, 7, 7, 5)))
    with pytest.raises(ValueError, match="SeparableConvBN: strides must be a positive int or a pair"):
        fork_module().SeparableConvBN(3, 4, 3, strides=0, rngs=fast_rngs())
