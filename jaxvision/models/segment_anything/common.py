"""Small building blocks that SAM shares: LayerNorm, learned embeddings, a fixed buffer,
the MLP heads.

Attribute names mirror the reference's ``state_dict`` (``lin1``, ``layers.0`` …) so the
checkpoint key of every parameter follows from its path; see ``.checkpoint``.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers import Dense


def gelu(x: jax.Array) -> jax.Array:
    """torch's default ``nn.GELU``: the exact erf form."""
    return jax.nn.gelu(x, approximate=False)


class Buffer(nnx.Variable):
    """A fixed array stored in the checkpoint but not trained (torch's ``register_buffer``);
    it is not an ``nnx.Param``, so it is not counted as a parameter."""


class LayerNorm(nnx.Module):
    """Layer normalisation over the last axis with biased variance, ``scale`` and ``bias``.

    On NHWC feature maps it is also the reference's ``LayerNorm2d`` (normalising channels).

    Args:
      dim: size of the last axis.
      eps: added to the variance (1e-6 in the image encoder, 1e-5 in the decoder transformer).

    Examples:
        >>> import jax.numpy as jnp
        >>> LayerNorm(2)(jnp.array([[1.0, 3.0]])).round(4)  # (±0.999995: the last digit depends on the CPU)
        Array([[-1.,  1.]], dtype=float32)
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        self.dim, self.eps = dim, eps
        self.scale = nnx.Param(jnp.ones((dim,)))
        self.bias = nnx.Param(jnp.zeros((dim,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]


class Embedding(nnx.Module):
    """A learned table of ``count`` vectors of size ``dim`` (torch ``nn.Embedding``; SAM only
    reads whole rows, never looks up ids).

    Examples:
        >>> from flax import nnx
        >>> Embedding(4, 8, rngs=nnx.Rngs(0)).embedding.shape
        (4, 8)
    """

    def __init__(self, count: int, dim: int, *, rngs: nnx.Rngs):
        self.embedding = nnx.Param(jax.random.normal(rngs.params(), (count, dim)))


class MLP(nnx.Module):
    """``Dense`` layers with ReLU between them (SAM's hypernetwork and IoU heads).

    Args:
      dims: feature sizes from input to output, e.g. ``(256, 256, 256, 32)`` for 3 layers.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> MLP((8, 16, 4), rngs=nnx.Rngs(0))(jnp.ones((2, 8))).shape
        (2, 4)
    """

    def __init__(self, dims: tuple[int, ...], *, rngs: nnx.Rngs):
        self.layers = nnx.List([Dense(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else jax.nn.relu(layer(x))
        return x


class MLPBlock(nnx.Module):
    """``lin2(act(lin1(x)))``: the transformer feed-forward block (GELU in the encoder, ReLU in
    the decoder).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> MLPBlock(8, 32, jax.nn.relu, rngs=nnx.Rngs(0))(jnp.ones((1, 3, 8))).shape
        (1, 3, 8)
    """

    def __init__(self, dim: int, hidden_dim: int, activation, *, rngs: nnx.Rngs):
        self.lin1 = Dense(dim, hidden_dim, rngs=rngs)
        self.lin2 = Dense(hidden_dim, dim, rngs=rngs)
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.lin2(self.activation(self.lin1(x)))
