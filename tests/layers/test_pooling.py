"""Pooling layers: shapes, Keras parity (incl. "same" on odd sizes), gradients, input errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxvision.layers import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D, set_policy

WINDOWED = [MaxPooling2D, AveragePooling2D]

# (pool_size, strides, padding, (height, width)): even and odd sizes, default and explicit
# strides, overlapping windows, non-square windows, and a stride larger than the window.
GRID = [
    (2, None, "valid", (6, 6)),
    (2, None, "valid", (7, 5)),
    (2, None, "same", (7, 5)),
    (3, 1, "same", (6, 7)),
    (3, 2, "valid", (7, 7)),
    (3, 2, "same", (6, 6)),
    ((2, 3), (1, 2), "same", (5, 8)),
    (2, 3, "valid", (8, 7)),
]


def expected_shape(pool, strides, padding, size, batch=2, channels=3):
    pool = (pool, pool) if isinstance(pool, int) else pool
    strides = pool if strides is None else (strides, strides) if isinstance(strides, int) else strides
    if padding == "valid":
        spatial = [(n - p) // s + 1 for n, p, s in zip(size, pool, strides)]
    else:
        spatial = [math.ceil(n / s) for n, s in zip(size, strides)]
    return (batch, *spatial, channels)


@pytest.mark.parametrize("layer_cls", WINDOWED)
@pytest.mark.parametrize("pool, strides, padding, size", GRID)
def test_windowed_shape_and_keras_parity(keras, layer_cls, pool, strides, padding, size):
    # Negative values too, so a zero-initialised max or a zero-padded average would show.
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype(np.float32)
    y = layer_cls(pool, strides, padding)(jnp.asarray(x))
    assert y.shape == expected_shape(pool, strides, padding, size)
    reference = getattr(keras.layers, layer_cls.__name__)(pool, strides, padding)(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(reference), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool, padding, size", [((2, 3), "valid", (7, 8)), (2, "same", (6, 4))])
def test_non_overlapping_max_equals_reduce_window_with_ties(pool, padding, size):
    """strides == pool_size (no padding needed) is a reshape and a max: the same outputs bit
    for bit, and with tied maxima the same gradient as reduce_window's select-and-scatter (the
    first maximum of each window in row-major order), without a select-and-scatter."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.integers(-2, 2, (2, *size, 3)), jnp.float32).at[0, :2, :2].set(-jnp.inf)  # many ties
    layer = MaxPooling2D(pool, padding=padding)
    window = (1, *layer.pool_size, 1)

    def reference(x):
        return jax.lax.reduce_window(x, -np.inf, jax.lax.max, window, window, padding.upper())

    @jax.jit
    def outputs_and_gradients(x, cotangent):
        (y, pullback), (expected, expected_pullback) = jax.vjp(layer, x), jax.vjp(reference, x)
        return y, expected, pullback(cotangent)[0], expected_pullback(cotangent)[0]

    cotangent = jnp.asarray(rng.normal(size=jax.eval_shape(layer, x).shape), jnp.float32)
    y, expected, gradient, expected_gradient = outputs_and_gradients(x, cotangent)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(gradient), np.asarray(expected_gradient))
    gradient_program = str(jax.make_jaxpr(jax.grad(lambda x: layer(x).sum()))(x))
    assert "reduce_window" not in gradient_program and "select_and_scatter" not in gradient_program


def test_strides_default_to_pool_size():
    assert MaxPooling2D(3).strides == (3, 3)
    assert AveragePooling2D((2, 3)).strides == (2, 3)
    assert MaxPooling2D(3, strides=1).strides == (1, 1)


def test_same_average_counts_only_real_pixels():
    # 3×3 input, 2×2 windows: the extra padding row/column goes at the end, and the border
    # windows average over 2 and 1 real pixels.
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    y = AveragePooling2D(2, padding="same")(x)[0, :, :, 0]
    np.testing.assert_array_equal(np.asarray(y), [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])


def test_same_max_pads_with_minus_infinity():
    x = -1.0 - jnp.arange(9.0).reshape(1, 3, 3, 1)
    y = MaxPooling2D(2, padding="same")(x)[0, :, :, 0]
    np.testing.assert_array_equal(np.asarray(y), [[-1.0, -3.0], [-7.0, -9.0]])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("layer_cls", [GlobalAveragePooling2D, GlobalMaxPooling2D])
def test_global_pooling_keras_parity(keras, layer_cls, keepdims):
    x = np.random.default_rng(1).normal(size=(2, 5, 4, 3)).astype(np.float32)
    y = layer_cls(keepdims=keepdims)(jnp.asarray(x))
    assert y.shape == ((2, 1, 1, 3) if keepdims else (2, 3))
    reference = getattr(keras.layers, layer_cls.__name__)(keepdims=keepdims)(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(reference), rtol=1e-6)


def test_global_pooling_known_values():
    x = jnp.arange(8.0).reshape(1, 2, 2, 2)  # channel 0: 0, 2, 4, 6; channel 1: 1, 3, 5, 7
    np.testing.assert_array_equal(np.asarray(GlobalAveragePooling2D()(x)), [[3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(GlobalMaxPooling2D()(x)), [[6.0, 7.0]])


@pytest.mark.parametrize("layer, order", [
    (MaxPooling2D(2, padding="same"), 1),  # piecewise linear: second differences are noise
    (MaxPooling2D((2, 3)), 1),  # tiled (reshape and max), the remainder dropped
    (MaxPooling2D(3, strides=2), 1),
    (AveragePooling2D(2, padding="same"), 2),
    (AveragePooling2D(3, strides=1, padding="valid"), 2),
    (GlobalAveragePooling2D(), 2),
    (GlobalMaxPooling2D(keepdims=True), 1),
])
def test_gradients(x64, layer, order):
    # Distinct random values: no ties, so max pooling is differentiable at this point.
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 5, 5, 2)))
    assert x.dtype == jnp.float64
    check_grads(set_policy(layer, "float64"), (x,), order=order, modes=("fwd", "rev"))


@pytest.mark.parametrize("layer_cls", WINDOWED + [GlobalAveragePooling2D, GlobalMaxPooling2D])
def test_rejects_wrong_rank_and_integer_input(layer_cls):
    layer = layer_cls()
    with pytest.raises(ValueError, match=rf"{layer_cls.__name__}: expected input of rank 4 .*got shape \(4, 4, 3\)"):
        layer(jnp.ones((4, 4, 3)))
    with pytest.raises(ValueError, match=rf"{layer_cls.__name__}: expected a floating-point input, got dtype uint8"):
        layer(jnp.ones((1, 4, 4, 3), jnp.uint8))


@pytest.mark.parametrize("layer_cls", WINDOWED)
def test_rejects_bad_arguments(layer_cls):
    kind = layer_cls.__name__
    with pytest.raises(ValueError, match=rf"{kind}: padding must be one of \('valid', 'same'\), got 'full'"):
        layer_cls(2, padding="full")
    with pytest.raises(ValueError, match=rf"{kind}: pool_size must be a positive int"):
        layer_cls(0)
    with pytest.raises(ValueError, match=rf"{kind}: strides must be a positive int"):
        layer_cls(2, strides=(1, 2, 3))


def test_padding_is_case_insensitive():
    assert MaxPooling2D(2, padding="SAME").padding == "same"


@pytest.mark.parametrize("layer_cls", WINDOWED)
def test_valid_input_smaller_than_window_is_an_error(layer_cls):
    layer = layer_cls(3, name="pool")
    with pytest.raises(ValueError, match=rf"{layer_cls.__name__} 'pool': input of spatial size \(2, 5\) is smaller"):
        layer(jnp.ones((1, 2, 5, 1)))
    # "same" padding still works there, as in Keras.
    assert layer_cls(3, padding="same")(jnp.ones((1, 2, 5, 1))).shape == (1, 1, 2, 1)


def test_jit():
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 5, 5, 2)), jnp.float32)
    layer = AveragePooling2D(2, padding="same")
    np.testing.assert_allclose(np.asarray(jax.jit(layer)(x)), np.asarray(layer(x)), rtol=1e-6)


@pytest.mark.parametrize("layer", [MaxPooling2D(2), AveragePooling2D(3, strides=2, padding="same")])
def test_gradient_under_jit_equals_eager(layer):
    # A traced init value makes reduce_window non-differentiable under jit; keep it concrete.
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 7, 3)), jnp.float32)
    grad = jax.grad(lambda x: (layer(x) ** 2).sum())
    np.testing.assert_allclose(np.asarray(jax.jit(grad)(x)), np.asarray(grad(x)), rtol=1e-6)
    assert float(jnp.abs(grad(x)).sum()) > 0
