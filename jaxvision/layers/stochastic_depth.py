"""StochasticDepth and LayerScale: the two residual-branch layers of ConvNeXt, as
``keras.applications.convnext`` defines them."""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, autocast, layer_dtypes


class StochasticDepth(Layer):
    """Drop a residual branch for whole examples (Huang et al., 2016), as Keras's ConvNeXt:
    in training, each example's branch is kept with probability ``1 - drop_path_rate`` and
    scaled by ``1 / (1 - drop_path_rate)`` (so its expectation is unchanged), else zeroed; in
    inference (the mode layers start in, and ``model.eval()``) it is the identity.

    Args:
      drop_path_rate: probability of dropping, in [0, 1).
      rngs: ``nnx.Rngs``; the ``dropout`` stream draws which examples are dropped.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> layer = StochasticDepth(0.5, rngs=nnx.Rngs(0))
        >>> layer(jnp.ones((2, 3))).tolist()  # inference: identity
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
        >>> layer.train(); sorted(set(layer(jnp.ones((64, 3))).ravel().tolist()))  # dropped or doubled
        [0.0, 2.0]
    """

    def __init__(self, drop_path_rate: float, *, rngs: nnx.Rngs, name: str | None = None,
                 dtype: PolicyLike | None = None):
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"StochasticDepth: drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        self.drop_path_rate, self.name = float(drop_path_rate), name
        self.dtype = layer_dtypes(dtype, None)[0]
        self.deterministic = True
        self.rngs = rngs.dropout

    def __call__(self, x: jax.Array) -> jax.Array:
        x = autocast(jnp.asarray(x), self.dtype)
        if self.deterministic or self.drop_path_rate == 0.0:
            return x
        keep_prob = 1.0 - self.drop_path_rate
        # Keras: floor(keep_prob + uniform) is 1 with probability keep_prob.
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = jnp.floor(keep_prob + jax.random.uniform(self.rngs(), shape, x.dtype))
        return (x / keep_prob) * mask


class LayerScale(Layer):
    """Multiply the last axis by learned per-channel factors ``gamma`` (Touvron et al., 2021),
    initialised to ``init_values``; ConvNeXt's ``LayerScale`` (its weight is ``gamma``).

    Args:
      init_values: the initial factor (ConvNeXt: 1e-6).
      projection_dim: size of the last axis.
      rngs: accepted for a uniform layer signature; the initial values are constants.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy).
      param_dtype: dtype of ``gamma``; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> LayerScale(0.5, 2, rngs=nnx.Rngs(0))(jnp.array([[2.0, 4.0]]))
        Array([[1., 2.]], dtype=float32)
    """

    def __init__(self, init_values: float, projection_dim: int, *, rngs: nnx.Rngs | None = None,
                 name: str | None = None, dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None):
        self.init_values, self.projection_dim, self.name = float(init_values), projection_dim, name
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        self.gamma = nnx.Param(jnp.full((projection_dim,), init_values, self.param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=getattr(x, "ndim", 0) or 1, channels=self.projection_dim)
        x = x.astype(self.dtype)
        return x * self.gamma[...].astype(self.dtype)
