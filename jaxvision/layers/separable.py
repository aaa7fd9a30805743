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


def configure_depthwise(layer: nnx.Module, in_channels: int, kernel_size: int | Sequence[int],
                        strides: int | Sequence[int] = 1, padding: str = "valid",
                        dilation_rate: int | Sequence[int] = 1, *, depth_multiplier: int = 1,
                        activation: str | Callable | None = None, use_bias: bool = True, name: str | None = None,
                        dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None) -> None:
    """Check, normalise and store on ``layer`` the hyperparameters of a depthwise step, as
    [DepthwiseConv2D][jaxvision.layers.DepthwiseConv2D] and
    [SeparableConv2D][jaxvision.layers.SeparableConv2D] do: ``kernel_size``, ``strides``
    and ``dilation_rate`` as pairs, ``padding`` lower-case, ``activation`` resolved (called
    as ``layer.activation_fn``), ``dtype`` / ``param_dtype`` from the dtype policy. Call it
    first in a forked layer's ``__init__``; errors name the layer's class and the argument.

    Examples:
        >>> from flax import nnx
        >>> class MySeparable(nnx.Module):
        ...     def __init__(self, in_channels, kernel_size, **kwargs):
        ...         configure_depthwise(self, in_channels, kernel_size, **kwargs)
        >>> layer = MySeparable(3, 3, padding="SAME")
        >>> layer.kernel_size, layer.padding, layer.dtype
        ((3, 3), 'same', dtype('float32'))
        >>> MySeparable(3, 0)
        Traceback (most recent call last):
        ...
        ValueError: MySeparable: kernel_size must be a positive int or a pair of them, got 0
    """
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
    layer.activation_fn = get_activation(activation)
    layer.dtype, layer.param_dtype = layer_dtypes(dtype, param_dtype)


def depthwise_step(layer: nnx.Module, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The depthwise convolution of a layer set up by
    [configure_depthwise][jaxvision.layers.configure_depthwise]: the input
    checked (rank, channels, floating dtype, a kernel that fits with ``"valid"``: clear errors
    naming the layer rather than XLA's), input and kernel cast to the layer's compute dtype,
    then [depthwise_conv][jaxvision.layers.depthwise_conv] with the layer's strides, padding and dilation."""
    check_input(layer, x, rank=4, channels=layer.in_channels)
    if layer.padding == "valid":
        check_fits(layer, x, layer.kernel_size, layer.dilation_rate)
    return depthwise_conv(x.astype(layer.dtype), kernel.astype(layer.dtype), layer.strides, layer.padding,
                          layer.dilation_rate)


def pointwise_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The pointwise (1x1) convolution of a separable convolution, in ``x``'s dtype: ``kernel``
    is Keras's ``(1, 1, in, out)`` and, a 1x1 convolution being a matmul over the channel
    axis, that is what runs.

    Examples:
        >>> import jax.numpy as jnp
        >>> pointwise_conv(jnp.ones((1, 2, 2, 3)), jnp.ones((1, 1, 3, 4))).shape
        (1, 2, 2, 4)
    """
    return x @ kernel[0, 0].astype(x.dtype)


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
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.
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
        configure_depthwise(self, in_channels, kernel_size, strides, padding, dilation_rate,
                            depth_multiplier=depth_multiplier, activation=activation, use_bias=use_bias, name=name,
                            dtype=dtype, param_dtype=param_dtype)
        shape = (*self.kernel_size, in_channels, depth_multiplier)
        kernel = jax.nn.initializers.glorot_uniform()(rngs.params(), shape)
        self.kernel = nnx.Param(kernel.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((in_channels * depth_multiplier,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = depthwise_step(self, x, self.kernel[...])
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return self.activation_fn(y)


class SeparableConv2D(Layer):
    """Depthwise then pointwise (1x1) convolution, ``activation(pointwise(depthwise(x)) + bias)``.

    Args:
      in_channels: channels of the input (last axis).
      filters: output channels of the pointwise convolution.
      kernel_size, strides, padding, dilation_rate, depth_multiplier: of the depthwise step,
        as in [DepthwiseConv2D][jaxvision.layers.DepthwiseConv2D] (the arguments after
        ``dilation_rate`` are keyword-only).
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias`` (``filters`` values, after the pointwise step only).
      rngs: ``nnx.Rngs`` for the two glorot-uniform kernels.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.
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
        configure_depthwise(self, in_channels, kernel_size, strides, padding, dilation_rate,
                            depth_multiplier=depth_multiplier, activation=activation, use_bias=use_bias, name=name,
                            dtype=dtype, param_dtype=param_dtype)
        self.filters = filters
        glorot = jax.nn.initializers.glorot_uniform()
        shape = (*self.kernel_size, in_channels, depth_multiplier)
        self.depthwise_kernel = nnx.Param(glorot(rngs.params(), shape).astype(self.param_dtype))
        pointwise = glorot(rngs.params(), (1, 1, in_channels * depth_multiplier, filters))
        self.pointwise_kernel = nnx.Param(pointwise.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((filters,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = pointwise_conv(depthwise_step(self, x, self.depthwise_kernel[...]), self.pointwise_kernel[...])
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return self.activation_fn(y)
