"""SAM's image encoder: a plain ViT (ViTDet style) on 16×16 patches, windowed attention with
decomposed relative positions, a few global blocks, and a conv neck to 256 channels.

NHWC throughout: ``(B, 1024, 1024, 3)`` → ``(B, 64, 64, 256)`` for the standard configs.
Quirks kept from the reference: windows zero-pad the grid bottom/right *after* ``norm1`` and
the padded tokens take part in attention unmasked; the relative-position terms use the
unscaled queries.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers import Conv2D, Dense
from jaxvision.models.segment_anything.common import LayerNorm, MLPBlock, gelu


def window_partition(x: jax.Array, window: int) -> tuple[jax.Array, tuple[int, int]]:
    """Zero-pad ``(B, H, W, C)`` bottom/right to multiples of ``window`` and cut it into
    ``(B · nh · nw, window, window, C)``; also returns the padded size."""
    b, h, w, c = x.shape
    ph, pw = -h % window, -w % window
    x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))
    hp, wp = h + ph, w + pw
    x = x.reshape(b, hp // window, window, wp // window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), (hp, wp)


def window_unpartition(windows: jax.Array, window: int, padded: tuple[int, int],
                       size: tuple[int, int]) -> jax.Array:
    """Inverse of ``window_partition``, cropping the padding off."""
    hp, wp = padded
    c = windows.shape[-1]
    x = windows.reshape(-1, hp // window, wp // window, window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, hp, wp, c)[:, :size[0], :size[1]]


def relative_positions(size: int, table: jax.Array) -> jax.Array:
    """Rows ``table[q − k + size − 1]`` for every query/key pair along one axis: ``(size, size, dim)``.
    The table has ``2·size − 1`` rows (queries and keys share the grid here)."""
    if table.shape[0] != 2 * size - 1:
        raise ValueError(f"relative-position table has {table.shape[0]} rows, expected {2 * size - 1} "
                         f"for a {size}-token axis")
    index = jnp.arange(size)[:, None] - jnp.arange(size)[None, :] + size - 1
    return table[index]


class Attention(nnx.Module):
    """Multi-head self-attention over a 2-D token grid with decomposed relative positions.

    Args:
      dim: channels. num_heads: heads (``dim`` must divide).
      grid: the (square) side of the token grid it attends over, which sizes the tables
        ``rel_pos_h``/``rel_pos_w`` (``2·grid − 1`` rows, zero-initialised).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> attn = nnx.eval_shape(lambda: Attention(8, 2, 4, rngs=nnx.Rngs(0)))  # shapes only
        >>> attn.rel_pos_h.shape, nnx.eval_shape(lambda m, x: m(x), attn, jnp.ones((1, 4, 4, 8))).shape
        ((7, 4), (1, 4, 4, 8))
    """

    def __init__(self, dim: int, num_heads: int, grid: int, *, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.grid = num_heads, grid
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = Dense(dim, 3 * dim, rngs=rngs)
        self.proj = Dense(dim, dim, rngs=rngs)
        self.rel_pos_h = nnx.Param(jnp.zeros((2 * grid - 1, head_dim)))
        self.rel_pos_w = nnx.Param(jnp.zeros((2 * grid - 1, head_dim)))

    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        heads, hd = self.num_heads, c // self.num_heads
        # Plain (batch·heads, tokens, channels) matmuls, as the reference: on CPU, XLA runs these
        # about 3× faster than one 6-D einsum over the token grid.
        qkv = self.qkv(x).reshape(b, h * w, 3, heads, hd).transpose(2, 0, 3, 1, 4).reshape(3, b * heads, h * w, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = (q * self.scale) @ k.transpose(0, 2, 1)
        grid_q = q.reshape(b * heads, h, w, hd)
        rel_h = jnp.einsum("nhwc,hyc->nhwy", grid_q, relative_positions(h, self.rel_pos_h[...]))
        rel_w = jnp.einsum("nhwc,wxc->nhwx", grid_q, relative_positions(w, self.rel_pos_w[...]))
        logits = logits.reshape(b * heads, h, w, h, w) + rel_h[..., None] + rel_w[..., None, :]
        attn = jax.nn.softmax(logits.reshape(b * heads, h * w, h * w), axis=-1)
        out = (attn @ v).reshape(b, heads, h, w, hd).transpose(0, 2, 3, 1, 4).reshape(b, h, w, c)
        return self.proj(out)


class Block(nnx.Module):
    """Pre-norm transformer block; ``window_size`` 0 means global attention over the whole grid.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> block = nnx.eval_shape(lambda: Block(8, 2, window_size=3, grid=5, rngs=nnx.Rngs(0)))  # shapes only
        >>> block.attn.rel_pos_h.shape, nnx.eval_shape(lambda m, x: m(x), block, jnp.ones((1, 5, 5, 8))).shape
        ((5, 4), (1, 5, 5, 8))
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, *, window_size: int, grid: int,
                 rngs: nnx.Rngs):
        self.window_size = window_size
        self.norm1 = LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, window_size or grid, rngs=rngs)
        self.norm2 = LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), gelu, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.norm1(x)
        if self.window_size:
            size = y.shape[1:3]
            windows, padded = window_partition(y, self.window_size)
            y = window_unpartition(self.attn(windows), self.window_size, padded, size)
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nnx.Module):
    """The ViT image encoder.

    Args:
      image_size: input side (1024 for the released models). patch_size: 16.
      embed_dim, depth, num_heads: ViT width, blocks and heads.
      window_size: local attention window; blocks in ``global_attn_indexes`` attend globally.
      out_chans: channels of the neck (256).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> enc = nnx.eval_shape(lambda: ImageEncoderViT(  # shapes only, nothing allocated
        ...     image_size=64, patch_size=16, embed_dim=16, depth=2, num_heads=2, window_size=3,
        ...     global_attn_indexes=(1,), out_chans=8, rngs=nnx.Rngs(0)))
        >>> nnx.eval_shape(lambda m, x: m(x), enc, jnp.zeros((1, 64, 64, 3))).shape
        (1, 4, 4, 8)
    """

    def __init__(self, *, image_size: int = 1024, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, window_size: int = 14,
                 global_attn_indexes: Sequence[int] = (2, 5, 8, 11), out_chans: int = 256, rngs: nnx.Rngs):
        if image_size % patch_size:
            raise ValueError(f"ImageEncoderViT: image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        grid = image_size // patch_size
        self.patch_embed = Conv2D(3, embed_dim, patch_size, strides=patch_size, rngs=rngs, name="patch_embed")
        self.pos_embed = nnx.Param(jnp.zeros((1, grid, grid, embed_dim)))
        self.blocks = nnx.List([
            Block(embed_dim, num_heads, mlp_ratio, window_size=0 if i in global_attn_indexes else window_size,
                  grid=grid, rngs=rngs) for i in range(depth)])
        self.neck = nnx.List([Conv2D(embed_dim, out_chans, 1, use_bias=False, rngs=rngs), LayerNorm(out_chans, 1e-6),
                              Conv2D(out_chans, out_chans, 3, padding="same", use_bias=False, rngs=rngs),
                              LayerNorm(out_chans, 1e-6)])

    def __call__(self, x: jax.Array) -> jax.Array:
        expected = (self.image_size, self.image_size, 3)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"ImageEncoderViT: expected input (batch, {self.image_size}, {self.image_size}, 3) "
                             f"(preprocessed and padded), got shape {tuple(x.shape)}")
        x = self.patch_embed(x) + self.pos_embed[...]
        for block in self.blocks:
            x = block(x)
        for layer in self.neck:
            x = layer(x)
        return x
