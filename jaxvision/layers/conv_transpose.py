"""Conv2DTranspose on ``jax.lax.conv_general_dilated``, with Keras 3 numerics, and a sub-pixel
fast path for CPU.

A transposed convolution spreads each input pixel over a kernel-sized patch of the output; it
is the gradient of a strided Conv2D with respect to its input. Keras (and ``jax.lax``) compute it
by dilating the input with ``s - 1`` zeros between pixels (``lhs_dilation``), padding it, and
running an ordinary convolution with the kernel flipped in space and its channel axes swapped.
The padding replicates Keras's JAX backend (``compute_conv_transpose_padding_args_for_jax``), so
output sizes match Keras:

* ``"valid"``: ``(n - 1) * s + k + output_padding``, with ``output_padding`` defaulting to
  ``max(k, s) - k`` (``k`` is the dilated kernel size);
* ``"same"``: ``n * s`` by default, ``(n - 1) * s + k % 2 + output_padding`` when given.

Most of those multiplications are by the inserted zeros, and XLA's CPU backend does them, in
the backward pass above all (forward+backward 16-32× slower than the sub-pixel form at the
segmenter's sizes; see bench/bench_conv_transpose.py). Output pixels of the same *phase* ``(o_h mod s_h, o_w mod s_w)`` see the same taps of
the kernel, so the layer is also ``s_h · s_w`` ordinary stride-1 convolutions of the undilated
input with those sub-kernels, interleaved (the sub-pixel formulation). We use it when the default
backend is the CPU and the dilated form elsewhere, where cuDNN and the TPU compiler skip the zeros
already; both give the same numbers up to float rounding order.
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.conv import DIMENSION_NUMBERS
from jaxvision.layers.core import get_activation
from jaxvision.layers.precision import PolicyLike, layer_dtypes


def transpose_padding(kernel_size: int, stride: int, dilation: int, padding: str,
                      output_padding: int | None) -> tuple[int, int]:
    """(before, after) padding of the stride-dilated input, one spatial axis, as Keras computes it."""
    kernel_size = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(kernel_size, stride) - kernel_size
        return kernel_size - 1, kernel_size - 1 + output_padding
    if output_padding is None:
        total = stride + kernel_size - 2  # output n * s
    else:
        total = kernel_size + kernel_size % 2 - 2 + output_padding
    before = min(total // 2 + total % 2, kernel_size - 1)
    return before, total - before


Pads = tuple[tuple[int, int], tuple[int, int]]


def conv_transpose_dilated(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads,
                           dilation_rate: tuple[int, int] = (1, 1)) -> jax.Array:
    """Keras's formulation: the input dilated by the strides, padded by ``pads`` (from
    ``transpose_padding``), convolved with the flipped kernel ``(kh, kw, filters, in)``."""
    flipped = jnp.flip(kernel, axis=(0, 1)).swapaxes(2, 3)  # the forward conv whose input-gradient this is
    return jax.lax.conv_general_dilated(x, flipped, window_strides=(1, 1), padding=pads, lhs_dilation=strides,
                                        rhs_dilation=dilation_rate, dimension_numbers=DIMENSION_NUMBERS)


def _phases(size: int, kernel_size: int, stride: int, pad: tuple[int, int]):
    """For one axis: the output length and, per output phase ``r``, the first flipped-kernel tap
    ``c`` it uses (then every ``stride``-th), the number of taps, the phase's output length, and
    the (possibly negative) padding of the undilated input that aligns the sub-kernel.

    Output ``o = s·q + r`` reads dilated input ``o + t - before`` with flipped tap ``t``, which is
    a real pixel ``i`` only when ``t ≡ before - r (mod s)``; then ``i = q + m + (r + c - before) / s``
    for the ``m``-th such tap.
    """
    before, after = pad
    length = (size - 1) * stride + 1 + before + after - kernel_size + 1
    phases = []
    for r in range(stride):
        first = (before - r) % stride
        taps = len(range(first, kernel_size, stride))
        shift = (r + first - before) // stride
        outputs = max(0, -(-(length - r) // stride))
        phases.append((first, taps, outputs, (-shift, outputs + taps - 1 - size + shift)))
    return length, phases


def conv_transpose_phases(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads) -> jax.Array:
    """The same transposed convolution (dilation 1) as ``s_h · s_w`` stride-1 convolutions of the
    undilated input with sub-kernels, one per output phase, interleaved: no multiplications by
    inserted zeros."""
    flipped = jnp.flip(kernel, axis=(0, 1)).swapaxes(2, 3)
    batch, filters = x.shape[0], flipped.shape[3]
    height, rows_h = _phases(x.shape[1], flipped.shape[0], strides[0], pads[0])
    width, rows_w = _phases(x.shape[2], flipped.shape[1], strides[1], pads[1])
    full_h, full_w = rows_h[0][2], rows_w[0][2]  # phase 0 has the most outputs
    rows = []
    for first_h, taps_h, out_h, pad_h in rows_h:
        row = []
        for first_w, taps_w, out_w, pad_w in rows_w:
            if taps_h and taps_w:
                y = jax.lax.conv_general_dilated(
                    x, flipped[first_h::strides[0], first_w::strides[1]], window_strides=(1, 1),
                    padding=(pad_h, pad_w), dimension_numbers=DIMENSION_NUMBERS)
            else:  # a stride larger than the kernel leaves phases that no tap reaches
                y = jnp.zeros((batch, out_h, out_w, filters), x.dtype)
            row.append(jnp.pad(y, ((0, 0), (0, full_h - out_h), (0, full_w - out_w), (0, 0))))
        rows.append(jnp.stack(row, axis=3))
    # (N, q_h, s_h, q_w, s_w, F) -> output row q_h * s_h + r_h, column q_w * s_w + r_w.
    y = jnp.stack(rows, axis=2).reshape(batch, full_h * strides[0], full_w * strides[1], filters)
    return y[:, :height, :width]


@functools.partial(jax.jit, static_argnames=("strides", "pads", "dilation_rate"))
def conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads,
                   dilation_rate: tuple[int, int] = (1, 1)) -> jax.Array:
    """Transposed conv in the fastest formulation for the default backend."""
    # Chosen when tracing, from the default backend: jax.lax.platform_dependent (as the
    # depthwise conv uses) made the segmenter's whole train step 12x slower on CPU when
    # differentiated, more than the sub-pixel form saves.
    if strides == (1, 1) or jax.default_backend() != "cpu":  # stride 1 inserts nothing
        return conv_transpose_dilated(x, kernel, strides, pads, dilation_rate)
    return conv_transpose_phases(x, kernel, strides, pads)


def _output_padding(value: int | Sequence[int] | None, strides: tuple[int, int]) -> tuple[int, int] | None:
    if value is None:
        return None
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and v >= 0 for v in values):
        raise ValueError(f"Conv2DTranspose: output_padding must be a non-negative int or a pair of them, "
                         f"got {value!r}")
    if any(p >= s for p, s in zip(values, strides)):
        raise ValueError(f"Conv2DTranspose: output_padding must be strictly less than strides "
                         f"(as in Keras), got output_padding={values} with strides={strides}")
    return values


class Conv2DTranspose(Layer):
    """Transposed 2-D convolution ``activation(conv_transpose(x, kernel) + bias)``.

    Args:
      in_channels: channels of the input (last axis).
      filters: output channels.
      kernel_size: int or (height, width).
      strides: int or pair; the upsampling factor.
      padding: ``"valid"`` or ``"same"``.
      dilation_rate: int or pair; Keras forbids strides > 1 together with dilation > 1. The
        arguments after it are keyword-only.
      output_padding: ``None``, int or pair, each strictly less than the stride: extra rows and
        columns at the bottom/right of the output.
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias``.
      rngs: ``nnx.Rngs`` for the glorot-uniform kernel.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.
      param_dtype: dtype the parameters are stored in; ``None`` is the policy's.

    The kernel is ``(kh, kw, filters, in_channels)``, output channels first, as in Keras.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> up = Conv2DTranspose(8, 4, 3, strides=2, padding="same", rngs=nnx.Rngs(0))
        >>> up.kernel.shape, up(jnp.ones((2, 5, 5, 8))).shape
        ((3, 3, 4, 8), (2, 10, 10, 4))
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int | Sequence[int],
                 strides: int | Sequence[int] = 1, padding: str = "valid",
                 dilation_rate: int | Sequence[int] = 1, *, output_padding: int | Sequence[int] | None = None,
                 activation: str | Callable | None = None, use_bias: bool = True, rngs: nnx.Rngs,
                 name: str | None = None, dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None):
        self.in_channels, self.filters, self.use_bias, self.name = in_channels, filters, use_bias, name
        self.kernel_size = pair("Conv2DTranspose", "kernel_size", kernel_size)
        self.strides = pair("Conv2DTranspose", "strides", strides)
        self.dilation_rate = pair("Conv2DTranspose", "dilation_rate", dilation_rate)
        self.padding = check_padding("Conv2DTranspose", padding)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("Conv2DTranspose: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)")
        self.output_padding = _output_padding(output_padding, self.strides)
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        shape = (*self.kernel_size, filters, in_channels)
        kernel = jax.nn.initializers.glorot_uniform()(rngs.params(), shape)
        self.kernel = nnx.Param(kernel.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((filters,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4, channels=self.in_channels)
        output_padding = self.output_padding or (None, None)
        pads = tuple(transpose_padding(*args, self.padding, p) for args, p in
                     zip(zip(self.kernel_size, self.strides, self.dilation_rate), output_padding))
        y = conv_transpose(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.strides, pads,
                           self.dilation_rate)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return self.activation_fn(y)
