"""The residual block of *Deep Learning with Python*, ch. 9 (``residual_block``).

Two 3×3 "same" relu convolutions (one with ``convs=1``, as in listings 9.2 and 9.3),
optionally followed by 2×2 max pooling, added to the block's input. When the block changes the shape, the input (the *shortcut*) is projected
with a 1×1 convolution so the sum is defined: with stride 2 when the block pools, or at
stride 1 when only the channel count changes. The stride-2 1×1 projection and the "same"
pooling give the same spatial size, ``ceil(size / 2)``, for odd sizes too.
"""

import jax
from flax import nnx

from jaxvision.layers._validate import check_input
from jaxvision.layers.base import Layer
from jaxvision.layers.conv import Conv2D
from jaxvision.layers.pooling import MaxPooling2D
from jaxvision.layers.precision import PolicyLike, layer_dtypes


class ResidualBlock(Layer):
    """``block(x) + shortcut(x)``, exactly the book's ``residual_block(x, filters, pooling)``.

    Sub-layers, so parameter paths read ``conv1.kernel``, ``shortcut.bias``…:
    ``conv1``, ``conv2``… (``convs`` of them: 3×3, relu, "same"), ``pool``
    (``MaxPooling2D(2, padding="same")``, or ``None``) and ``shortcut`` (the 1×1 projection, or
    ``None`` for the identity).

    Args:
      in_channels: channels of the input (last axis).
      filters: output channels of every convolution, hence of the block.
      pooling: halve height and width (rounding up) with max pooling.
      convs: 3×3 convolutions in the block: 2 in ``residual_block``, 1 in listings 9.2 and 9.3.
      rngs: ``nnx.Rngs`` for the glorot-uniform kernels.
      name: optional layer name used in error messages and summaries.
      dtype, param_dtype: of every sub-layer, as in [Conv2D][jaxvision.layers.Conv2D].

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> block = ResidualBlock(3, 32, pooling=True, rngs=nnx.Rngs(0))
        >>> block(jnp.ones((2, 32, 32, 3))).shape
        (2, 16, 16, 32)
        >>> block.shortcut.kernel.shape, block.shortcut.strides
        ((1, 1, 3, 32), (2, 2))
        >>> ResidualBlock(32, 32, rngs=nnx.Rngs(0)).shortcut is None
        True
        >>> ResidualBlock(32, 64, convs=1, rngs=nnx.Rngs(0)).conv1.kernel.shape  # listing 9.2
        (3, 3, 32, 64)
    """

    def __init__(self, in_channels: int, filters: int, pooling: bool = False, *, convs: int = 2,
                 rngs: nnx.Rngs, name: str | None = None, dtype: PolicyLike | None = None,
                 param_dtype: PolicyLike | None = None):
        if isinstance(convs, bool) or not isinstance(convs, int) or convs < 1:
            raise ValueError(f"ResidualBlock{f' {name!r}' if name else ''}: convs must be a positive integer, "
                             f"got {convs!r}")
        self.in_channels, self.filters, self.pooling, self.name = in_channels, filters, pooling, name
        self.convs = convs
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        dtypes = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        for i in range(1, convs + 1):
            setattr(self, f"conv{i}", Conv2D(in_channels if i == 1 else filters, filters, 3, padding="same",
                                             activation="relu", rngs=rngs, **dtypes))
        self.pool = MaxPooling2D(2, padding="same", dtype=self.dtype) if pooling else None
        if pooling:
            self.shortcut = Conv2D(in_channels, filters, 1, strides=2, rngs=rngs, **dtypes)
        elif filters != in_channels:
            self.shortcut = Conv2D(in_channels, filters, 1, rngs=rngs, **dtypes)
        else:
            self.shortcut = None

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4, channels=self.in_channels)
        x = x.astype(self.dtype)
        y = x
        for i in range(1, self.convs + 1):
            y = getattr(self, f"conv{i}")(y)
        if self.pool is not None:
            y = self.pool(y)
        residual = x if self.shortcut is None else self.shortcut(x)
        return y + residual
