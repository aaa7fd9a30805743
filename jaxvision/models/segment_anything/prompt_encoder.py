"""SAM's prompt encoder: points and box corners become sparse tokens (random Fourier position
encoding plus a learned type embedding); a low-res mask becomes a dense embedding.

Coordinates are in the *model input* frame (after resizing the longest side to ``image_size``),
x then y, as in the reference.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers import Conv2D
from jaxvision.models.segment_anything.common import Buffer, Embedding, LayerNorm, gelu


class PositionEmbeddingRandom(nnx.Module):
    """``pe(c) = [sin(2π(2c−1)G), cos(2π(2c−1)G)]`` for coordinates ``c`` normalised to [0, 1],
    with a fixed Gaussian ``G`` of shape ``(2, num_pos_feats)`` (a checkpoint buffer).

    Examples:
        >>> from flax import nnx
        >>> PositionEmbeddingRandom(4, rngs=nnx.Rngs(0)).dense((3, 5)).shape
        (3, 5, 8)
    """

    def __init__(self, num_pos_feats: int, *, rngs: nnx.Rngs):
        self.positional_encoding_gaussian_matrix = Buffer(jax.random.normal(rngs.params(), (2, num_pos_feats)))

    def encode(self, coords: jax.Array) -> jax.Array:
        """``(..., 2)`` coordinates in [0, 1] → ``(..., 2·num_pos_feats)``."""
        projected = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix[...])
        return jnp.concatenate([jnp.sin(projected), jnp.cos(projected)], axis=-1)

    def dense(self, size: tuple[int, int]) -> jax.Array:
        """The encoding at every cell centre of an ``(h, w)`` grid: ``(h, w, channels)``."""
        h, w = size
        y = (jnp.arange(h, dtype=jnp.float32) + 0.5) / h
        x = (jnp.arange(w, dtype=jnp.float32) + 0.5) / w
        grid = jnp.stack(jnp.broadcast_arrays(x[None, :], y[:, None]), axis=-1)
        return self.encode(grid)

    def at_pixels(self, coords: jax.Array, image_size: tuple[int, int]) -> jax.Array:
        """Encode ``(..., 2)`` x/y pixel coordinates of an ``(h, w)`` image."""
        return self.encode(coords / jnp.array([image_size[1], image_size[0]], dtype=coords.dtype))


class PromptEncoder(nnx.Module):
    """Embeds point, box and mask prompts.

    Args:
      embed_dim: token channels (256).
      image_embedding_size: (h, w) of the image embedding (64, 64).
      input_image_size: (h, w) of the padded model input (1024, 1024).
      mask_in_chans: hidden channels of the mask downscaler (16).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> enc = nnx.eval_shape(lambda: PromptEncoder(32, (16, 16), (256, 256), 16, rngs=nnx.Rngs(0)))
        >>> sparse, dense = nnx.eval_shape(lambda m, p, l: m(p, l), enc, jnp.ones((1, 1, 2)), jnp.ones((1, 1)))
        >>> sparse.shape, dense.shape  # one point plus the pad point, as the reference adds
        ((1, 2, 32), (1, 16, 16, 32))
    """

    def __init__(self, embed_dim: int = 256, image_embedding_size: tuple[int, int] = (64, 64),
                 input_image_size: tuple[int, int] = (1024, 1024), mask_in_chans: int = 16, *, rngs: nnx.Rngs):
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2, rngs=rngs)
        # 0: negative point, 1: positive point, 2/3: box top-left/bottom-right corner
        self.point_embeddings = nnx.List([Embedding(1, embed_dim, rngs=rngs) for _ in range(4)])
        self.not_a_point_embed = Embedding(1, embed_dim, rngs=rngs)
        quarter = mask_in_chans // 4
        self.mask_downscaling = nnx.List([
            Conv2D(1, quarter, 2, strides=2, rngs=rngs), LayerNorm(quarter, 1e-6), gelu,
            Conv2D(quarter, mask_in_chans, 2, strides=2, rngs=rngs), LayerNorm(mask_in_chans, 1e-6), gelu,
            Conv2D(mask_in_chans, embed_dim, 1, rngs=rngs)])
        self.no_mask_embed = Embedding(1, embed_dim, rngs=rngs)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        return 4 * self.image_embedding_size[0], 4 * self.image_embedding_size[1]

    def dense_pe(self) -> jax.Array:
        """Position encoding of the image embedding grid, ``(h, w, embed_dim)``."""
        return self.pe_layer.dense(self.image_embedding_size)

    def embed_points(self, points: jax.Array, labels: jax.Array, pad: bool) -> jax.Array:
        points = points + 0.5  # pixel centres
        if pad:
            points = jnp.concatenate([points, jnp.zeros((points.shape[0], 1, 2), points.dtype)], axis=1)
            labels = jnp.concatenate([labels, -jnp.ones((labels.shape[0], 1), labels.dtype)], axis=1)
        pe = self.pe_layer.at_pixels(points, self.input_image_size)
        labels = labels[..., None]
        pe = jnp.where(labels == -1, self.not_a_point_embed.embedding[0], pe)
        pe = pe + jnp.where(labels == 0, self.point_embeddings[0].embedding[0], 0.0)
        return pe + jnp.where(labels == 1, self.point_embeddings[1].embedding[0], 0.0)

    def embed_boxes(self, boxes: jax.Array) -> jax.Array:
        corners = self.pe_layer.at_pixels((boxes + 0.5).reshape(-1, 2, 2), self.input_image_size)
        types = jnp.stack([self.point_embeddings[2].embedding[0], self.point_embeddings[3].embedding[0]])
        return corners + types

    def embed_masks(self, masks: jax.Array) -> jax.Array:
        x = masks[..., None]
        for layer in self.mask_downscaling:
            x = layer(x)
        return x

    def __call__(self, points: jax.Array | None = None, labels: jax.Array | None = None,
                 boxes: jax.Array | None = None, masks: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Sparse ``(B, N′, C)`` and dense ``(B, h, w, C)`` embeddings.

        Args:
          points: ``(B, N, 2)`` x/y in input pixels, with ``labels`` ``(B, N)``: 1 foreground,
            0 background, −1 padding. Without ``boxes`` a padding point is appended (reference quirk).
          boxes: ``(B, 4)`` x0, y0, x1, y1.
          masks: ``(B, 4h, 4w)`` low-res mask logits, e.g. a previous prediction.
        """
        if (points is None) != (labels is None):
            raise ValueError("PromptEncoder: points and labels must be given together")
        if points is not None and (points.ndim != 3 or points.shape[-1] != 2 or labels.shape != points.shape[:2]):
            raise ValueError(f"PromptEncoder: expected points (B, N, 2) and labels (B, N), got "
                             f"{tuple(points.shape)} and {tuple(labels.shape)}")
        if boxes is not None and (boxes.ndim != 2 or boxes.shape[-1] != 4):
            raise ValueError(f"PromptEncoder: expected boxes (B, 4), got {tuple(boxes.shape)}")
        if masks is not None and tuple(masks.shape[1:]) != self.mask_input_size:
            raise ValueError(f"PromptEncoder: expected masks (B, {self.mask_input_size[0]}, "
                             f"{self.mask_input_size[1]}), got {tuple(masks.shape)}")
        batch = next((a.shape[0] for a in (points, boxes, masks) if a is not None), 1)
        sparse = [self.embed_points(points, labels, pad=boxes is None)] if points is not None else []
        if boxes is not None:
            sparse.append(self.embed_boxes(boxes))
        sizes = {s.shape[0] for s in sparse} | ({masks.shape[0]} if masks is not None else set())
        if len(sizes) > 1:
            raise ValueError(f"PromptEncoder: points, boxes and masks disagree on the batch size: {sorted(sizes)}")
        sparse = jnp.concatenate(sparse, axis=1) if sparse else jnp.zeros((batch, 0, self.embed_dim))
        if masks is not None:
            dense = self.embed_masks(masks)
        else:
            dense = jnp.broadcast_to(self.no_mask_embed.embedding[0], (batch, *self.image_embedding_size, self.embed_dim))
        return sparse, dense
