"""Max, average and global pooling on ``jax.lax.reduce_window``, with Keras 3 numerics.

Keras traps reproduced here:

* ``strides`` defaults to ``pool_size`` (non-overlapping windows), not to 1.
* ``"same"`` padding is TensorFlow's: when the total padding is odd, the extra pixel goes at
  the bottom/right. XLA's ``"SAME"`` string follows the same rule, so we pass it through.
* ``"same"`` average pooling divides each window by the number of *real* pixels in it, not
  by the window size, so border outputs are not dragged towards zero.

Non-overlapping max pooling (``strides == pool_size``, the Keras default, with no padding
needed) is a reshape and a max instead of ``reduce_window``: the same numbers, but its
gradient is elementwise, where ``reduce_window``'s is XLA's select-and-scatter, several times
slower on CPU (``bench/bench_attribution.py``). Ties send the gradient to the first maximum
of the window in row-major order, as select-and-scatter (so Keras on its JAX backend) does.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.layers._validate import check_fits, check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, layer_dtypes


class _Pooling2D(Layer):
    """Shared arguments and checks of the windowed poolings."""

    def __init__(self, pool_size: int | Sequence[int] = 2, strides: int | Sequence[int] | None = None,
                 padding: str = "valid", *, name: str | None = None, dtype: PolicyLike | None = None):
        kind = type(self).__name__
        self.pool_size = pair(kind, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else pair(kind, "strides", strides)
        self.padding = check_padding(kind, padding)
        self.name = name
        self.dtype = layer_dtypes(dtype, None)[0]

    def _checked(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        if self.padding == "valid":
            check_fits(self, x, self.pool_size, what="pool_size")
        return x.astype(self.dtype)

    def _reduce(self, x: jax.Array, init: float, op: Callable) -> jax.Array:
        # A concrete NumPy init lets jax recognise max/add and use its differentiable
        # reduce_window_max/sum; a traced init (jnp under jit) is not differentiable.
        return jax.lax.reduce_window(x, np.array(init, x.dtype), op, (1, *self.pool_size, 1),
                                     (1, *self.strides, 1), self.padding.upper())


@jax.custom_jvp
def _block_max(blocks: jax.Array) -> jax.Array:
    """Max of (N, H', ph, W', pw, C) blocks over the window axes 2 and 4."""
    return blocks.max(axis=(2, 4))


@_block_max.defjvp
def _block_max_jvp(primals, tangents):
    # jnp.max's own derivative splits ties evenly; this one picks the first maximum of each
    # window in row-major order, as reduce_window's select-and-scatter. Linear in the tangent
    # and elementwise, so its transpose (the gradient) fuses.
    (blocks,), (tangent,) = primals, tangents
    out = _block_max(blocks)
    ph, pw = blocks.shape[2], blocks.shape[4]
    order = jnp.arange(ph * pw, dtype=jnp.int32).reshape(1, 1, ph, 1, pw, 1)
    first = jnp.where(blocks == jnp.expand_dims(out, (2, 4)), order, ph * pw).min(axis=(2, 4), keepdims=True)
    return out, jnp.where(order == first, tangent, jnp.zeros_like(tangent)).sum(axis=(2, 4))


def tiled_max(x: jax.Array, pool_size: tuple[int, int]) -> jax.Array:
    """Max pooling with ``strides == pool_size`` and no padding (the remainder rows and
    columns dropped, as ``"valid"`` does) by reshaping into blocks; see the module docstring.

    Examples:
        >>> import jax.numpy as jnp
        >>> tiled_max(jnp.arange(10.0).reshape(1, 2, 5, 1), (2, 2))[0, :, :, 0]
        Array([[6., 8.]], dtype=float32)
    """
    n, h, w, c = x.shape
    ph, pw = pool_size
    rows, cols = h // ph, w // pw
    blocks = x[:, :rows * ph, :cols * pw].reshape(n, rows, ph, cols, pw, c)
    return _block_max(blocks)


class MaxPooling2D(_Pooling2D):
    """Maximum over each ``pool_size`` window, like ``keras.layers.MaxPooling2D``.

    Args:
      pool_size: int or (height, width) of the window.
      strides: int or pair; ``None`` (the default) means ``pool_size``.
      padding: ``"valid"`` or ``"same"``; "same" pads with -inf, so padding never wins.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> MaxPooling2D(2)(jnp.ones((2, 26, 26, 32))).shape
        (2, 13, 13, 32)
        >>> MaxPooling2D(2, padding="same")(jnp.ones((1, 5, 5, 3))).shape
        (1, 3, 3, 3)
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self._checked(x)
        if self.strides == self.pool_size and (self.padding == "valid"
                                               or not any(np.remainder(x.shape[1:3], self.pool_size))):
            return tiled_max(x, self.pool_size)
        return self._reduce(x, -jnp.inf, jax.lax.max)


class AveragePooling2D(_Pooling2D):
    """Mean over each ``pool_size`` window, like ``keras.layers.AveragePooling2D``.

    Args:
      pool_size: int or (height, width) of the window.
      strides: int or pair; ``None`` (the default) means ``pool_size``.
      padding: ``"valid"`` or ``"same"``; "same" averages over the unpadded pixels only.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> AveragePooling2D(2, padding="same")(jnp.arange(3.0).reshape(1, 1, 3, 1))[0, 0, :, 0]
        Array([0.5, 2. ], dtype=float32)
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        sums = self._reduce(self._checked(x), 0.0, jax.lax.add)
        if self.padding == "valid":
            return sums / (self.pool_size[0] * self.pool_size[1])
        # Count the real pixels of each window by pooling ones padded the same way; a
        # (1, H, W, 1) array is enough since the count depends on position only.
        ones = jnp.ones((1, *x.shape[1:3], 1), self.dtype)
        return sums / self._reduce(ones, 0.0, jax.lax.add)


class _GlobalPooling2D(Layer):
    def __init__(self, keepdims: bool = False, *, name: str | None = None, dtype: PolicyLike | None = None):
        self.keepdims, self.name = keepdims, name
        self.dtype = layer_dtypes(dtype, None)[0]


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width, like ``keras.layers.GlobalAveragePooling2D``.

    Args:
      keepdims: keep the spatial axes with size 1, giving ``(batch, 1, 1, channels)``.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> GlobalAveragePooling2D()(jnp.ones((2, 8, 8, 128))).shape
        (2, 128)
        >>> GlobalAveragePooling2D(keepdims=True)(jnp.ones((2, 8, 8, 128))).shape
        (2, 1, 1, 128)
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        return jnp.mean(x.astype(self.dtype), axis=(1, 2), keepdims=self.keepdims)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum over height and width, like ``keras.layers.GlobalMaxPooling2D``.

    Args:
      keepdims: keep the spatial axes with size 1, giving ``(batch, 1, 1, channels)``.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> GlobalMaxPooling2D()(jnp.arange(8.0).reshape(1, 2, 2, 2))
        Array([[6., 7.]], dtype=float32)
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        return jnp.max(x.astype(self.dtype), axis=(1, 2), keepdims=self.keepdims)
