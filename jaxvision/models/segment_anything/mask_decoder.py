"""SAM's mask decoder: output tokens (one IoU token, four mask tokens) run through the
two-way transformer with the prompt tokens; the image tokens are upscaled 4× and each mask
token's hypernetwork MLP turns it into the weights of a per-pixel dot product."""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers import Conv2DTranspose
from jaxvision.models.segment_anything.common import MLP, Embedding, LayerNorm, gelu
from jaxvision.models.segment_anything.transformer import TwoWayTransformer


class MaskDecoder(nnx.Module):
    """Predicts mask logits at 4× the embedding resolution and an IoU score per mask.

    Args:
      transformer_dim: token channels (256).
      num_multimask_outputs: 3 (plus the single-mask output: 4 mask tokens).
      depth, num_heads, mlp_dim: of the two-way transformer (2, 8, 2048).
      iou_head_depth, iou_head_hidden_dim: the IoU MLP (3, 256).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> dec = nnx.eval_shape(lambda: MaskDecoder(transformer_dim=32, mlp_dim=64, iou_head_hidden_dim=32,
        ...                                          rngs=nnx.Rngs(0)))  # shapes only
        >>> masks, iou = nnx.eval_shape(lambda m, *a: m(*a, multimask_output=True), dec, jnp.ones((1, 4, 4, 32)),
        ...                             jnp.ones((4, 4, 32)), jnp.ones((2, 3, 32)), jnp.ones((2, 4, 4, 32)))
        >>> masks.shape, iou.shape
        ((2, 3, 16, 16), (2, 3))
    """

    def __init__(self, *, transformer_dim: int = 256, num_multimask_outputs: int = 3, depth: int = 2,
                 num_heads: int = 8, mlp_dim: int = 2048, iou_head_depth: int = 3, iou_head_hidden_dim: int = 256,
                 rngs: nnx.Rngs):
        self.num_mask_tokens = num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(depth, transformer_dim, num_heads, mlp_dim, rngs=rngs)
        self.iou_token = Embedding(1, transformer_dim, rngs=rngs)
        self.mask_tokens = Embedding(self.num_mask_tokens, transformer_dim, rngs=rngs)
        c4, c8 = transformer_dim // 4, transformer_dim // 8
        self.output_upscaling = nnx.List([Conv2DTranspose(transformer_dim, c4, 2, strides=2, rngs=rngs), LayerNorm(c4, 1e-6), gelu,
                                          Conv2DTranspose(c4, c8, 2, strides=2, rngs=rngs), gelu])
        self.output_hypernetworks_mlps = nnx.List([
            MLP((transformer_dim, transformer_dim, transformer_dim, c8), rngs=rngs) for _ in range(self.num_mask_tokens)])
        self.iou_prediction_head = MLP((transformer_dim,) + (iou_head_hidden_dim,) * (iou_head_depth - 1)
                                       + (self.num_mask_tokens,), rngs=rngs)

    def predict_masks(self, image_embeddings: jax.Array, image_pe: jax.Array, sparse: jax.Array,
                      dense: jax.Array) -> tuple[jax.Array, jax.Array]:
        """All ``num_mask_tokens`` masks ``(B, T, 4h, 4w)`` and IoU predictions ``(B, T)``."""
        b = sparse.shape[0]
        output_tokens = jnp.concatenate([self.iou_token.embedding[...], self.mask_tokens.embedding[...]])
        tokens = jnp.concatenate([jnp.broadcast_to(output_tokens, (b, *output_tokens.shape)), sparse], axis=1)
        # One image embedding serves every prompt of the batch (the reference's repeat_interleave).
        src = jnp.broadcast_to(image_embeddings, (b, *image_embeddings.shape[1:])) + dense
        hs, src = self.transformer(src, image_pe, tokens)
        _, h, w, c = dense.shape
        upscaled = src.reshape(b, h, w, c)
        for layer in self.output_upscaling:
            upscaled = layer(upscaled)
        hyper_in = jnp.stack([mlp(hs[:, 1 + i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], axis=1)
        masks = jnp.einsum("btc,bhwc->bthw", hyper_in, upscaled)
        return masks, self.iou_prediction_head(hs[:, 0])

    def __call__(self, image_embeddings: jax.Array, image_pe: jax.Array, sparse: jax.Array, dense: jax.Array,
                 multimask_output: bool) -> tuple[jax.Array, jax.Array]:
        """Image embeddings ``(1 or B, h, w, C)``, ``image_pe`` ``(h, w, C)``, sparse prompt
        tokens ``(B, N, C)``, dense prompt embeddings ``(B, h, w, C)`` → mask logits and IoU
        predictions: the 3 multimask outputs, or only the first (single-mask) output."""
        if image_embeddings.shape[0] not in (1, sparse.shape[0]):
            raise ValueError(f"MaskDecoder: {image_embeddings.shape[0]} image embeddings for a batch of "
                             f"{sparse.shape[0]} prompts; give 1 (shared) or one per prompt")
        masks, iou = self.predict_masks(image_embeddings, image_pe, sparse, dense)
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou[:, chosen]
