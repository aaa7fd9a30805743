"""Depthwise convolution on ``jax.lax``, in the two formulations and the per-platform choice.

A depthwise convolution filters every input channel with its own ``depth_multiplier`` kernels.
Keras (JAX backend) computes it as a grouped convolution with one group per channel, so output
channel ``c * depth_multiplier + m`` is input channel ``c`` filtered by ``kernel[..., c, m]``.

XLA's CPU backend runs grouped convolutions, and above all their gradients, very slowly. For
small kernels the same sum is a handful of shifted, strided slices of the padded input times
per-channel taps: plain elementwise work that XLA fuses well and differentiates cheaply. We
use that form when compiling for CPU and the grouped convolution everywhere else (where the
cuDNN/TPU kernels are fast); both give the same numbers up to float rounding order.
[DepthwiseConv2D][jaxvision.layers.DepthwiseConv2D], [SeparableConv2D][jaxvision.layers.SeparableConv2D] and a
[Conv2D][jaxvision.layers.Conv2D] with ``groups == in_channels`` (ConvNeXt's) all run here.
"""

import functools

import jax
import jax.numpy as jnp

# NHWC inputs, HWIO kernels: Keras's channels-last layout, so weights copy over unchanged.
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")

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
