"""LayerNormalization with Keras 3 numerics (ConvNeXt's normalisation).

Unlike BatchNormalization it normalises each example over its own last axis, so it has no
moving statistics and behaves the same in training and inference; freezing it (``trainable =
False``) only stops ``gamma`` and ``beta`` from training, as in Keras.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input, layer_label
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, at_least_float32, layer_dtypes


class LayerNormalization(Layer):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta`` over the last axis, like
    ``keras.layers.LayerNormalization`` (axis -1).

    Computed in at least float32 in Keras's order (``keras.ops.layer_normalization``):
    ``inv = rsqrt(var + eps) * gamma``; ``x * inv + (beta - mean * inv)``, with the biased
    variance, then cast to the compute dtype.

    Args:
      in_channels: size of the last axis.
      epsilon: added to the variance; Keras's default 1e-3 (ConvNeXt passes 1e-6).
      center: whether to learn the offset ``beta``.
      scale: whether to learn the factor ``gamma``.
      rngs: accepted for a uniform layer signature; the initial values are constants.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy).
      param_dtype: dtype of ``gamma`` and ``beta``; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> ln = LayerNormalization(2, epsilon=0.0, rngs=nnx.Rngs(0))
        >>> ln(jnp.array([[1.0, 3.0], [10.0, 0.0]]))
        Array([[-1.,  1.],
               [ 1., -1.]], dtype=float32)
    """

    def __init__(self, in_channels: int, epsilon: float = 1e-3, center: bool = True, scale: bool = True, *,
                 rngs: nnx.Rngs, name: str | None = None, dtype: PolicyLike | None = None,
                 param_dtype: PolicyLike | None = None):
        self.in_channels, self.epsilon, self.center, self.scale, self.name = (
            in_channels, float(epsilon), center, scale, name)
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        self.gamma = nnx.Param(jnp.ones((in_channels,), self.param_dtype)) if scale else None
        self.beta = nnx.Param(jnp.zeros((in_channels,), self.param_dtype)) if center else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"{layer_label(self)}: expected input of rank >= 2 (batch, ..., channels), "
                             f"got shape {getattr(x, 'shape', None)}")
        check_input(self, x, rank=x.ndim, channels=self.in_channels)
        x = x.astype(self.dtype).astype(at_least_float32(self.dtype))
        mean = jnp.mean(x, axis=-1, keepdims=True)
        variance = jnp.var(x, axis=-1, keepdims=True)
        inv = jax.lax.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma[...].astype(x.dtype)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta[...].astype(x.dtype)
        return (x * inv + shift).astype(self.dtype)
