"""Normalization: ``keras.layers.Normalization`` as a model layer, ``(x - mean) / sqrt(var)``.

EfficientNet keeps ImageNet's channel mean and variance in such a layer, as non-trainable
weights (``mean``, ``variance`` and Keras's legacy ``count``) that weight files fill; with
``mean=`` and ``variance=`` given (EfficientNetV2, ConvNeXt) they are constants and the
layer holds no weights, as in Keras.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.layers._validate import check_input
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, at_least_float32, layer_dtypes

# keras.config.epsilon(): the smallest standard deviation Keras divides by.
KERAS_EPSILON = 1e-7


class Normalization(Layer):
    """Standardise the last axis with a stored mean and variance, as Keras does:
    ``(x - mean) / maximum(sqrt(variance), 1e-7)``.

    Args:
      in_channels: size of the last axis.
      mean, variance: per-channel constants (or scalars); ``None`` (both) makes them
        non-trainable weights, initially 0 and 1, for a weight file to fill.
      rngs: accepted for a uniform layer signature; the initial values are constants.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> Normalization(2, mean=[1.0, 2.0], variance=[4.0, 1.0], rngs=nnx.Rngs(0))(jnp.array([[3.0, 3.0]]))
        Array([[1., 1.]], dtype=float32)
        >>> sorted(nnx.state(Normalization(3, rngs=nnx.Rngs(0))).keys())  # weights a file fills
        ['count', 'mean', 'variance']
    """

    def __init__(self, in_channels: int, mean: float | Sequence[float] | None = None,
                 variance: float | Sequence[float] | None = None, *, rngs: nnx.Rngs | None = None,
                 name: str | None = None, dtype: PolicyLike | None = None):
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization: pass both mean and variance or neither, got mean={mean!r}, "
                             f"variance={variance!r}")
        self.in_channels, self.name = in_channels, name
        self.dtype = layer_dtypes(dtype, None)[0]
        stat = at_least_float32(self.dtype)
        if mean is None:
            self.constants = None
            self.mean = nnx.BatchStat(jnp.zeros((in_channels,), stat))
            self.variance = nnx.BatchStat(jnp.ones((in_channels,), stat))
            # Keras keeps an int64 sample count for old files; it never enters the computation.
            self.count = nnx.BatchStat(jnp.zeros((), jnp.int32))
        else:
            values = [np.broadcast_to(np.asarray(v, np.float64), (in_channels,)) for v in (mean, variance)]
            self.constants = tuple(tuple(float(e) for e in v) for v in values)  # static: part of the graph
            self.mean = self.variance = self.count = None

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=getattr(x, "ndim", 0) or 1, channels=self.in_channels)
        x = x.astype(self.dtype)
        if self.constants is None:
            mean, variance = self.mean[...], self.variance[...]
        else:
            mean, variance = (jnp.asarray(v, jnp.float32) for v in self.constants)
        mean, variance = mean.astype(x.dtype), variance.astype(x.dtype)
        return (x - mean) / jnp.maximum(jnp.sqrt(variance), jnp.asarray(KERAS_EPSILON, x.dtype))
