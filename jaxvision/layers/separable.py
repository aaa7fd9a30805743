"""DepthwiseConv2D and SeparableConv2D with Keras 3 numerics, on the fast depthwise path of
``jaxvision.layers.depthwise`` (the grouped convolution off CPU, shifted slices on CPU).
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_fits, check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.core import get_activation
from jaxvision.layers.depthwise import (MAX_SHIFTED_TAPS, depthwise_conv, depthwise_conv_lax,  # noqa: F401
                                        depthwise_conv_shifted)
from jaxvision.layers.precision import PolicyLike, layer_dtypes


def _configure(layer: nnx.Module, in_channels: int, kernel_size, strides, padding, depth_multiplier,
               dilation_rate, activation, use_bias: bool, name: str | None, dtype, param_dtype) -> None:
    """Validate and store the hyperparameters both layers share."""
    kind = type(layer).__name__
    if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise ValueError(f"{kind}: depth_multiplier must be a positive int, got {depth_multiplier!r}")
    layer.in_channels, layer.depth_multiplier, layer.use_bias, layer.name = (
        in_channels, depth_multiplier, use_bias, name)
    layer.kernel_size = pair(kind, "kernel_size", kernel_size)
    layer.strides = pair(kind, "strides", strides)
    layer.dilation_rate = pair(kind, "dilation_rate", dilation_rate)
    layer.padding = check_padding(kind, padding)
    layer.activation = activation
    layer._fn = get_activation(activation)
    layer.dtype, layer.param_dtype = layer_dtypes(dtype, param_dtype)


def _checked_depthwise(layer: nnx.Module, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Input checks (clear errors rather than XLA's), then the depthwise conv."""
    check_input(layer, x, rank=4, channels=layer.in_channels)
    if layer.padding == "valid":
        check_fits(layer, x, layer.kernel_size, layer.dilation_rate)
    return depthwise_conv(x.astype(layer.dtype), kernel.astype(layer.dtype), layer.strides, layer.padding,
                          layer.dilation_rate)


class DepthwiseConv2D(Layer):
    """Per-channel 2-D convolution ``activation(depthwise(x, kernel) + bias)``.

    Output channel ``c * depth_multiplier + m`` is input channel ``c`` filtered by
    ``kernel[:, :, c, m]``, as in Keras.

    Args:
      in_channels: channels of the input (last axis).
      kernel_size: int or (height, width).
      strides: int or pair.
      padding: ``"valid"`` or ``"same"``.
      dilation_rate: int or pair. The arguments after it are keyword-only.
      depth_multiplier: output channels per input channel.
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias`` (``in_channels * depth_multiplier`` values).
      rngs: ``nnx.Rngs`` for the glorot-uniform kernel.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see :mod:`jaxvision.layers.precision`). Floating inputs are cast to it.
      param_dtype: dtype the parameters are stored in; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> layer = DepthwiseConv2D(3, 3, padding="same", depth_multiplier=2, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer(jnp.ones((2, 8, 8, 3))).shape
        ((3, 3, 3, 2), (2, 8, 8, 6))
    """

    def __init__(self, in_channels: int, kernel_size: int | Sequence[int], strides: int | Sequence[int] = 1,
                 padding: str = "valid", dilation_rate: int | Sequence[int] = 1, *, depth_multiplier: int = 1,
                 activation: str | Callable | None = None, use_bias: bool = True, rngs: nnx.Rngs,
                 name: str | None = None, dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None):
        _configure(self, in_channels, kernel_size, strides, padding, depth_multiplier, dilation_rate,
                   activation, use_bias, name, dtype, param_dtype)
        shape = (*self.kernel_size, in_channels, depth_multiplier)
        kernel = jax.nn.initializers.glorot_uniform()(rngs.params(), shape)
        self.kernel = nnx.Param(kernel.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((in_channels * depth_multiplier,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = _checked_depthwise(self, x, self.kernel[...])
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return self._fn(y)


class SeparableConv2D(Layer):
    """Depthwise then pointwise (1x1) convolution, ``activation(pointwise(depthwise(x)) + bias)``.

    Args:
      in_channels: channels of the input (last axis).
      filters: output channels of the pointwise convolution.
      kernel_size, strides, padding, dilation_rate, depth_multiplier: of the depthwise step,
        as in :class:`DepthwiseConv2D` (the arguments after ``dilation_rate`` are keyword-only).
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias`` (``filters`` values, after the pointwise step only).
      rngs: ``nnx.Rngs`` for the two glorot-uniform kernels.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see :mod:`jaxvision.layers.precision`). Floating inputs are cast to it.
      param_dtype: dtype the parameters are stored in; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> layer = SeparableConv2D(3, 16, 3, padding="same", rngs=nnx.Rngs(0))
        >>> layer.depthwise_kernel.shape, layer.pointwise_kernel.shape, layer(jnp.ones((2, 8, 8, 3))).shape
        ((3, 3, 3, 1), (1, 1, 3, 16), (2, 8, 8, 16))
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int | Sequence[int],
                 strides: int | Sequence[int] = 1, padding: str = "valid", dilation_rate: int | Sequence[int] = 1,
                 *, depth_multiplier: int = 1, activation: str | Callable | None = None, use_bias: bool = True,
                 rngs: nnx.Rngs, name: str | None = None, dtype: PolicyLike | None = None,
                 param_dtype: PolicyLike | None = None):
        _configure(self, in_channels, kernel_size, strides, padding, depth_multiplier, dilation_rate,
                   activation, use_bias, name, dtype, param_dtype)
        self.filters = filters
        glorot = jax.nn.initializers.glorot_uniform()
        shape = (*self.kernel_size, in_channels, depth_multiplier)
        self.depthwise_kernel = nnx.Param(glorot(rngs.params(), shape).astype(self.param_dtype))
        pointwise = glorot(rngs.params(), (1, 1, in_channels * depth_multiplier, filters))
        self.pointwise_kernel = nnx.Param(pointwise.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((filters,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = _checked_depthwise(self, x, self.depthwise_kernel[...])
        # A 1x1 convolution is a matmul over the channel axis.
        y = y @ self.pointwise_kernel[0, 0].astype(self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return self._fn(y)
