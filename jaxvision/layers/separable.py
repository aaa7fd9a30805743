"""DepthwiseConv2D and SeparableConv2D with Keras 3 numerics, and a fast depthwise path for CPU.

A depthwise convolution filters every input channel with its own ``depth_multiplier`` kernels.
Keras (JAX backend) computes it as a grouped convolution with one group per channel, so output
channel ``c * depth_multiplier + m`` is input channel ``c`` filtered by ``kernel[..., c, m]``.

XLA's CPU backend runs grouped convolutions, and above all their gradients, very slowly. For
small kernels the same sum is a handful of shifted, strided slices of the padded input times
per-channel taps: plain elementwise work that XLA fuses well and differentiates cheaply. We
use that form when compiling for CPU and the grouped convolution everywhere else (where the
cuDNN/TPU kernels are fast); both give the same numbers up to float rounding order.
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_fits, check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.conv import DIMENSION_NUMBERS
from jaxvision.layers.core import get_activation
from jaxvision.layers.precision import PolicyLike, layer_dtypes

# The shifted sum is unrolled, one slice per tap: measured faster on CPU up to 11x11 (see
# bench/bench_depthwise.py); beyond that compile time grows, so huge kernels keep the grouped conv.
MAX_SHIFTED_TAPS = 121


def depthwise_conv_lax(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
                       padding: str = "valid", dilation_rate: tuple[int, int] = (1, 1)) -> jax.Array:
    """Depthwise conv exactly as Keras's JAX backend writes it: one group per input channel."""
    kh, kw, channels, multiplier = kernel.shape
    return jax.lax.conv_general_dilated(
        x, kernel.reshape(kh, kw, 1, channels * multiplier), window_strides=strides,
        padding=padding.upper(), rhs_dilation=dilation_rate, dimension_numbers=DIMENSION_NUMBERS,
        feature_group_count=channels)


def depthwise_conv_shifted(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
                           padding: str = "valid", dilation_rate: tuple[int, int] = (1, 1)) -> jax.Array:
    """The same depthwise conv as a sum over kernel taps of shifted, strided input slices."""
    kh, kw, channels, multiplier = kernel.shape
    if multiplier > 1:
        x = jnp.repeat(x, multiplier, axis=-1)  # channel c*M + m reads input channel c
    taps = kernel.reshape(kh, kw, channels * multiplier)
    window = ((kh - 1) * dilation_rate[0] + 1, (kw - 1) * dilation_rate[1] + 1)
    # The padding lax itself would use, so "same" puts the odd pixel bottom/right as Keras does.
    pads = jax.lax.padtype_to_pads(x.shape[1:3], window, strides, padding.upper())
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    batch, height, width, depth = x.shape
    out_h = (height - window[0]) // strides[0] + 1
    out_w = (width - window[1]) // strides[1] + 1
    y = None
    for i in range(kh):
        for j in range(kw):
            top, left = i * dilation_rate[0], j * dilation_rate[1]
            tap = jax.lax.slice(
                x, (0, top, left, 0),
                (batch, top + (out_h - 1) * strides[0] + 1, left + (out_w - 1) * strides[1] + 1, depth),
                (1, strides[0], strides[1], 1))
            term = tap * taps[i, j]
            y = term if y is None else y + term
    return y


# Jitted so eager calls compile the unrolled sum once per shape, not op by op.
@functools.partial(jax.jit, static_argnames=("strides", "padding", "dilation_rate"))
def depthwise_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
                   padding: str = "valid", dilation_rate: tuple[int, int] = (1, 1)) -> jax.Array:
    """Depthwise conv, choosing the fastest formulation for the platform being compiled for."""
    args = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
    if kernel.shape[0] * kernel.shape[1] > MAX_SHIFTED_TAPS:
        return depthwise_conv_lax(x, kernel, **args)
    # Decided when lowering, so a jitted function picks the right one for its device.
    return jax.lax.platform_dependent(x, kernel, cpu=functools.partial(depthwise_conv_shifted, **args),
                                      default=functools.partial(depthwise_conv_lax, **args))


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
