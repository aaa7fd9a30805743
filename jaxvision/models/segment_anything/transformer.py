"""The two-way transformer of SAM's mask decoder: prompt tokens and image tokens attend to
each other in turn (token→image, then image→token), with positional encodings re-added at
every attention. The first block's self-attention has no residual and sees no encoding
(reference quirk, ``skip_first_layer_pe``).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers import Dense
from jaxvision.models.segment_anything.common import LayerNorm, MLPBlock


class Attention(nnx.Module):
    """Multi-head attention that may project to ``embedding_dim // downsample_rate`` channels.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> attn = nnx.eval_shape(lambda: Attention(32, 8, downsample_rate=2, rngs=nnx.Rngs(0)))  # shapes only
        >>> q, kv = jnp.ones((1, 3, 32)), jnp.ones((1, 5, 32))
        >>> attn.q_proj.kernel.shape, nnx.eval_shape(lambda m, q, kv: m(q, kv, kv), attn, q, kv).shape
        ((32, 16), (1, 3, 32))
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1, *, rngs: nnx.Rngs):
        internal = embedding_dim // downsample_rate
        if internal % num_heads:
            raise ValueError(f"Attention: {internal} internal channels are not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q_proj = Dense(embedding_dim, internal, rngs=rngs)
        self.k_proj = Dense(embedding_dim, internal, rngs=rngs)
        self.v_proj = Dense(embedding_dim, internal, rngs=rngs)
        self.out_proj = Dense(internal, embedding_dim, rngs=rngs)

    def _heads(self, x: jax.Array) -> jax.Array:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads)

    def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        logits = jnp.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(q.shape[-1])
        out = jnp.einsum("bhqk,bkhc->bqhc", jax.nn.softmax(logits, axis=-1), v)
        return self.out_proj(out.reshape(*out.shape[:2], -1))


class TwoWayAttentionBlock(nnx.Module):
    """Self-attention on tokens, token→image cross-attention, MLP, image→token cross-attention."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int, attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False, *, rngs: nnx.Rngs):
        self.skip_first_layer_pe = skip_first_layer_pe
        self.self_attn = Attention(embedding_dim, num_heads, rngs=rngs)
        self.norm1 = LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate, rngs=rngs)
        self.norm2 = LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, jax.nn.relu, rngs=rngs)
        self.norm3 = LayerNorm(embedding_dim)
        self.norm4 = LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate, rngs=rngs)

    def __call__(self, queries: jax.Array, keys: jax.Array, query_pe: jax.Array,
                 key_pe: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nnx.Module):
    """``depth`` two-way blocks and a final token→image attention.

    Args:
      depth: blocks (2). embedding_dim: channels (256). num_heads: 8. mlp_dim: 2048.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> t = nnx.eval_shape(lambda: TwoWayTransformer(2, 32, 8, 64, rngs=nnx.Rngs(0)))  # shapes only
        >>> tokens, image = nnx.eval_shape(lambda m, *a: m(*a), t, jnp.ones((2, 4, 4, 32)), jnp.ones((4, 4, 32)),
        ...                                jnp.ones((2, 7, 32)))
        >>> tokens.shape, image.shape
        ((2, 7, 32), (2, 16, 32))
    """

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2, *, rngs: nnx.Rngs):
        self.layers = nnx.List([
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                                 skip_first_layer_pe=i == 0, rngs=rngs) for i in range(depth)])
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate, rngs=rngs)
        self.norm_final_attn = LayerNorm(embedding_dim)

    def __call__(self, image_embedding: jax.Array, image_pe: jax.Array,
                 point_embedding: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``image_embedding`` (B, h, w, C), ``image_pe`` (h, w, C), tokens (B, N, C) →
        updated tokens (B, N, C) and image tokens (B, h·w, C)."""
        b, h, w, c = image_embedding.shape
        keys = image_embedding.reshape(b, h * w, c)
        key_pe = image_pe.reshape(1, h * w, c)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
