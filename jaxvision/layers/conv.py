"""Conv2D on ``jax.lax.conv_general_dilated``, with Keras 3 numerics.

Keras "same" padding is TensorFlow's: when the total padding is odd, the extra pixel goes
at the bottom/right. XLA's ``"SAME"`` string follows the same rule, so we pass it through.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_fits, check_input, check_padding, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.core import get_activation
from jaxvision.layers.depthwise import DIMENSION_NUMBERS, depthwise_conv
from jaxvision.layers.precision import PolicyLike, layer_dtypes
from jaxvision.layers.regularizers import Regularizer, activity_penalty, get_regularizer



class Conv2D(Layer):
    """2-D convolution ``activation(conv(x, kernel) + bias)``.

    Args:
      in_channels: channels of the input (last axis).
      filters: output channels.
      kernel_size: int or (height, width).
      strides: int or pair.
      padding: ``"valid"`` or ``"same"``.
      dilation_rate: int or pair; Keras forbids strides > 1 together with dilation > 1. Every
        convolution takes it right after ``padding``; the arguments after it are keyword-only.
      groups: split the channels into this many groups convolved separately (Keras's; the
        kernel is ``(kh, kw, in_channels // groups, filters)``). ``groups == in_channels``, as in
        ConvNeXt, is a depthwise convolution and runs on its fast path
        (``jaxvision.layers.depthwise.depthwise_conv``).
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias``.
      kernel_regularizer, bias_regularizer: penalty on the weight added to the training loss
        (Keras's; ``"l1"``, ``"l2"``, ``L2(1e-4)`` or a callable), see ``jaxvision.layers.regularizers``.
      activity_regularizer: penalty on the output, divided by the batch size (Keras 3's rule).
      rngs: ``nnx.Rngs`` for the glorot-uniform kernel.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.
      param_dtype: dtype the parameters are stored in; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> conv = Conv2D(1, 32, 3, activation="relu", rngs=nnx.Rngs(0))
        >>> conv.kernel.shape, conv(jnp.ones((2, 28, 28, 1))).shape
        ((3, 3, 1, 32), (2, 26, 26, 32))
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int | Sequence[int],
                 strides: int | Sequence[int] = 1, padding: str = "valid",
                 dilation_rate: int | Sequence[int] = 1, *, groups: int = 1, activation: str | Callable | None = None,
                 use_bias: bool = True, kernel_regularizer: str | Regularizer | None = None,
                 bias_regularizer: str | Regularizer | None = None, activity_regularizer: str | Regularizer | None = None,
                 rngs: nnx.Rngs, name: str | None = None, dtype: PolicyLike | None = None,
                 param_dtype: PolicyLike | None = None):
        self.in_channels, self.filters, self.use_bias, self.name = in_channels, filters, use_bias, name
        self.kernel_regularizer = get_regularizer(kernel_regularizer, what="kernel_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, what="bias_regularizer")
        self.activity_regularizer = get_regularizer(activity_regularizer, what="activity_regularizer")
        self.kernel_size = pair("Conv2D", "kernel_size", kernel_size)
        self.strides = pair("Conv2D", "strides", strides)
        self.dilation_rate = pair("Conv2D", "dilation_rate", dilation_rate)
        self.padding = check_padding("Conv2D", padding)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("Conv2D: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)")
        if (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or in_channels % groups
                or filters % groups):
            raise ValueError(f"Conv2D: groups must be a positive int dividing in_channels ({in_channels}) and "
                             f"filters ({filters}), got {groups!r}")
        self.groups = groups
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        shape = (*self.kernel_size, in_channels // groups, filters)
        kernel = jax.nn.initializers.glorot_uniform()(rngs.params(), shape)
        self.kernel = nnx.Param(kernel.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((filters,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4, channels=self.in_channels)
        if self.padding == "valid":
            check_fits(self, x, self.kernel_size, self.dilation_rate)
        x, kernel = x.astype(self.dtype), self.kernel[...].astype(self.dtype)
        if self.groups > 1 and self.groups == self.in_channels:
            # (kh, kw, 1, C·M) grouped kernel == (kh, kw, C, M) depthwise kernel, same element order.
            kh, kw = self.kernel_size
            y = depthwise_conv(x, kernel.reshape(kh, kw, self.in_channels, self.filters // self.in_channels),
                               self.strides, self.padding, self.dilation_rate)
        else:
            y = jax.lax.conv_general_dilated(
                x, kernel, window_strides=self.strides, padding=self.padding.upper(),
                rhs_dilation=self.dilation_rate, dimension_numbers=DIMENSION_NUMBERS,
                feature_group_count=self.groups)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        y = self.activation_fn(y)
        activity_penalty(self.activity_regularizer, y)
        return y
