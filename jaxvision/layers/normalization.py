"""BatchNormalization with Keras 3 numerics, modal like Flax NNX.

Keras passes ``training=`` on every call; here the mode is the ``use_running_average``
attribute, which ``model.eval()`` sets and ``model.train()`` clears, so a model's forward
pass keeps a single signature. As in Keras, a frozen layer (``trainable = False``) always
runs in inference mode, so fine-tuning never touches its moving statistics.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input, layer_label
from jaxvision.layers.base import Layer, set_trainable
from jaxvision.layers.precision import PolicyLike, at_least_float32, layer_dtypes


class BatchNormalization(Layer):
    """Normalise each channel (last axis) over all other axes, like
    ``keras.layers.BatchNormalization``.

    In training mode (``model.train()``, what ``fit`` uses inside its step) it normalises with
    the batch mean and *biased* batch variance and folds them into the moving statistics,
    ``moving = moving * momentum + batch * (1 - momentum)``.
    In inference mode (``use_running_average``: the mode every layer starts in, as a Keras
    layer called without ``training=True``, and the one ``model.eval()`` restores), or when frozen
    (``trainable = False``), it normalises with the moving statistics and leaves them alone. Either way the output is
    ``gamma * (x - mean) / sqrt(variance + epsilon) + beta``.

    Args:
      in_channels: channels of the input (last axis).
      momentum: weight of the old moving statistics in each update.
      epsilon: added to the variance to avoid dividing by zero.
      center: whether to learn the offset ``beta``.
      scale: whether to learn the factor ``gamma``.
      rngs: accepted for a uniform layer signature; the initial values are constants.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy): inputs are cast
        to it and so is the output, but the statistics are computed and kept in float32.
      param_dtype: dtype of ``gamma`` and ``beta``; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> bn = BatchNormalization(2, rngs=nnx.Rngs(0))
        >>> x = jnp.array([[0.0, 10.0], [4.0, 30.0]])  # batch mean (2, 20), biased variance (4, 100)
        >>> bn.train(); bn(x).round(2)
        Array([[-1., -1.],
               [ 1.,  1.]], dtype=float32)
        >>> [round(v, 4) for v in bn.moving_mean[...].tolist() + bn.moving_variance[...].tolist()]
        [0.02, 0.2, 1.03, 1.99]
        >>> bn.eval(); [round(v, 2) for v in bn(x)[1].tolist()]  # moving statistics: (x - mean) / sqrt(var + ε)
        [3.92, 21.12]
    """

    def __init__(self, in_channels: int, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, *, rngs: nnx.Rngs, name: str | None = None,
                 dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        self.in_channels, self.name = in_channels, name
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.use_running_average = True
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        stat_dtype = at_least_float32(self.param_dtype)
        self.gamma = nnx.Param(jnp.ones((in_channels,), self.param_dtype)) if scale else None
        self.beta = nnx.Param(jnp.zeros((in_channels,), self.param_dtype)) if center else None
        self.moving_mean = nnx.BatchStat(jnp.zeros((in_channels,), stat_dtype))
        self.moving_variance = nnx.BatchStat(jnp.ones((in_channels,), stat_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"{layer_label(self)}: expected input of rank >= 2 (batch, ..., channels), "
                             f"got shape {getattr(x, 'shape', None)}")
        check_input(self, x, rank=x.ndim, channels=self.in_channels)
        # Like Keras, half-precision inputs are normalised in float32 (their range is too
        # small for the statistics) and the result is cast back to the compute dtype.
        x = x.astype(self.dtype).astype(at_least_float32(self.dtype))
        if self.use_running_average or not self.trainable:
            mean = self.moving_mean[...].astype(x.dtype)
            variance = self.moving_variance[...].astype(x.dtype)
        else:
            axes = tuple(range(x.ndim - 1))
            mean, variance = jnp.mean(x, axis=axes), jnp.var(x, axis=axes)  # biased variance
            m = self.momentum
            self.moving_mean[...] = (self.moving_mean[...] * m + mean * (1.0 - m)).astype(self.moving_mean.dtype)
            self.moving_variance[...] = (self.moving_variance[...] * m
                                         + variance * (1.0 - m)).astype(self.moving_variance.dtype)
        # Keras's operation order (keras.src.backend.jax.nn.batch_normalization), so the
        # rounding matches too: x * inv + (beta - mean * inv) with inv = gamma / sqrt(var + eps).
        inv = jax.lax.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma[...].astype(x.dtype)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta[...].astype(x.dtype)
        return (x * inv + shift).astype(self.dtype)


def unfreeze_except_batchnorm(module: nnx.Module) -> None:
    """Make everything in ``module`` trainable except its BatchNormalization layers, the
    book's advice for fine-tuning a pretrained backbone: unfrozen, they would normalise with
    the statistics of small fine-tuning batches and wreck what the backbone learned.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Conv2D
        >>> from jaxvision.models import Sequential
        >>> backbone = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), BatchNormalization(4, rngs=nnx.Rngs(0))])
        >>> backbone.trainable = False
        >>> unfreeze_except_batchnorm(backbone)
        >>> backbone.conv2d.trainable, backbone.batch_normalization.trainable
        (True, False)
    """
    set_trainable(module, True)
    for _, node in nnx.iter_graph(module):
        if isinstance(node, BatchNormalization):
            set_trainable(node, False)
