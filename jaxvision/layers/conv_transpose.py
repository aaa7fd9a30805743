"""Conv2DTranspose on ``jax.lax.conv_general_dilated``, with Keras 3 numerics.

A transposed convolution spreads each input pixel over a kernel-sized patch of the output; it
is the gradient of a strided Conv2D with respect to its input. We compute it as XLA does: dilate
the input by the stride (``lhs_dilation``), pad it, and run an ordinary convolution with the
kernel flipped in space and its channel axes swapped. The padding replicates Keras's JAX
backend (``compute_conv_transpose_padding_args_for_jax``), so output sizes match Keras:

* ``"valid"``: ``(n - 1) * s + k + output_padding``, with ``output_padding`` defaulting to
  ``max(k, s) - k`` (``k`` is the dilated kernel size);
* ``"same"``: ``n * s`` by default, ``(n - 1) * s + k % 2 + output_padding`` when given.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.conv import DIMENSION_NUMBERS
from jaxvision.layers.core import get_activation


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
      output_padding: ``None``, int or pair, each strictly less than the stride: extra rows and
        columns at the bottom/right of the output.
      dilation_rate: int or pair; Keras forbids strides > 1 together with dilation > 1.
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias``.
      rngs: ``nnx.Rngs`` for the glorot-uniform kernel.
      name: optional layer name used in error messages and summaries.

    The kernel is ``(kh, kw, filters, in_channels)``, output channels first, as in Keras.

    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> up = Conv2DTranspose(8, 4, 3, strides=2, padding="same", rngs=nnx.Rngs(0))
    >>> up.kernel.shape, up(jnp.ones((2, 5, 5, 8))).shape
    ((3, 3, 4, 8), (2, 10, 10, 4))
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int | Sequence[int],
                 strides: int | Sequence[int] = 1, padding: str = "valid",
                 output_padding: int | Sequence[int] | None = None, dilation_rate: int | Sequence[int] = 1,
                 activation: str | Callable | None = None, use_bias: bool = True, *, rngs: nnx.Rngs,
                 name: str | None = None):
        self.in_channels, self.filters, self.use_bias, self.name = in_channels, filters, use_bias, name
        self.kernel_size = pair("Conv2DTranspose", "kernel_size", kernel_size)
        self.strides = pair("Conv2DTranspose", "strides", strides)
        self.dilation_rate = pair("Conv2DTranspose", "dilation_rate", dilation_rate)
        self.padding = check_padding("Conv2DTranspose", padding)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("Conv2DTranspose: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)")
        self.output_padding = _output_padding(output_padding, self.strides)
        self.activation = activation
        self._fn = get_activation(activation)
        shape = (*self.kernel_size, filters, in_channels)
        self.kernel = nnx.Param(jax.nn.initializers.glorot_uniform()(rngs.params(), shape))
        self.bias = nnx.Param(jnp.zeros((filters,))) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4, channels=self.in_channels)
        output_padding = self.output_padding or (None, None)
        pads = [transpose_padding(*args, self.padding, p) for args, p in
                zip(zip(self.kernel_size, self.strides, self.dilation_rate), output_padding)]
        # Flip the taps and swap (filters, in) -> (in, filters): the forward conv whose
        # input-gradient this layer is.
        kernel = jnp.flip(self.kernel[...], axis=(0, 1)).swapaxes(2, 3)
        y = jax.lax.conv_general_dilated(
            x, kernel, window_strides=(1, 1), padding=pads, lhs_dilation=self.strides,
            rhs_dilation=self.dilation_rate, dimension_numbers=DIMENSION_NUMBERS)
        if self.bias is not None:
            y = y + self.bias[...]
        return self._fn(y)
