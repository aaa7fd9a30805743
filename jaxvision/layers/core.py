"""Dense, Dropout, Rescaling, Activation and Flatten: the non-spatial layers of the book.

Numerics follow Keras 3: glorot-uniform kernels, zero biases, inverted dropout.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers._validate import check_input, layer_label
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, at_least_float32, autocast, layer_dtypes
from jaxvision.layers.regularizers import Regularizer, activity_penalty, get_regularizer


def _float32_sigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(x.astype(at_least_float32(x.dtype)))


def _float32_softmax(x: jax.Array) -> jax.Array:
    return jax.nn.softmax(x.astype(at_least_float32(x.dtype)), axis=-1)


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """Keras 3's ``hard_sigmoid``: ``relu6(x + 3) / 6`` (Keras 2's was ``0.2 x + 0.5``, clipped)."""
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_swish(x: jax.Array) -> jax.Array:
    """Keras 3's ``hard_swish`` (alias ``hard_silu``): ``x * hard_sigmoid(x)``."""
    return x * hard_sigmoid(x)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    # Probabilities in at least float32 under every policy: bfloat16 rounds 0.999 to 1.0.
    "sigmoid": _float32_sigmoid,
    "softmax": _float32_softmax,
    "tanh": jnp.tanh,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # Keras's default is the exact form
    "swish": jax.nn.silu,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "relu6": jax.nn.relu6,
    "hard_sigmoid": hard_sigmoid,
    "hard_swish": hard_swish,
    "hard_silu": hard_swish,
}


def get_activation(activation: str | Callable | None) -> Callable[[jax.Array], jax.Array]:
    """Resolve a Keras activation name (or ``None`` → identity, or a callable)."""
    if activation is None:
        return ACTIVATIONS["linear"]
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


class Activation(Layer):
    """Apply a named activation, like ``keras.layers.Activation``.

    Args:
      activation: Keras activation name or callable.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> Activation("relu")(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
    """

    def __init__(self, activation: str | Callable, *, name: str | None = None, dtype: PolicyLike | None = None):
        self.activation = activation
        self.name = name
        self.activation_fn = get_activation(activation)
        self.dtype = layer_dtypes(dtype, None)[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.activation_fn(autocast(jnp.asarray(x), self.dtype))


class Dense(Layer):
    """Fully connected layer ``activation(x @ kernel + bias)``.

    Args:
      in_features: size of the last input axis.
      units: output size.
      activation: Keras activation name or callable; ``None`` is linear.
      use_bias: whether to add ``bias``.
      kernel_regularizer, bias_regularizer: penalty on the weight added to the training loss
        (Keras's; ``"l1"``, ``"l2"``, ``L2(1e-4)`` or a callable), see ``jaxvision.layers.regularizers``.
      activity_regularizer: penalty on the output, divided by the batch size (Keras 3's rule).
      rngs: ``nnx.Rngs`` for the glorot-uniform kernel.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.
      param_dtype: dtype the parameters are stored in; ``None`` is the policy's.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> layer = Dense(3, 4, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer(jnp.ones((2, 3))).shape
        ((3, 4), (2, 4))
    """

    def __init__(self, in_features: int, units: int, activation: str | Callable | None = None,
                 use_bias: bool = True, *, kernel_regularizer: str | Regularizer | None = None,
                 bias_regularizer: str | Regularizer | None = None, activity_regularizer: str | Regularizer | None = None,
                 rngs: nnx.Rngs, name: str | None = None,
                 dtype: PolicyLike | None = None, param_dtype: PolicyLike | None = None):
        self.in_features, self.units, self.use_bias, self.name = in_features, units, use_bias, name
        self.kernel_regularizer = get_regularizer(kernel_regularizer, what="kernel_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, what="bias_regularizer")
        self.activity_regularizer = get_regularizer(activity_regularizer, what="activity_regularizer")
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.dtype, self.param_dtype = layer_dtypes(dtype, param_dtype)
        kernel = jax.nn.initializers.glorot_uniform()(rngs.params(), (in_features, units))
        self.kernel = nnx.Param(kernel.astype(self.param_dtype))
        self.bias = nnx.Param(jnp.zeros((units,), self.param_dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        # Like Keras, Dense maps the last axis of an input of any rank >= 2.
        check_input(self, x, rank=max(getattr(x, "ndim", 2), 2), channels=self.in_features)
        y = x.astype(self.dtype) @ self.kernel[...].astype(self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        y = self.activation_fn(y)
        activity_penalty(self.activity_regularizer, y)
        return y


class Dropout(Layer):
    """Inverted dropout as in Keras: zero a fraction ``rate`` of inputs, scale the rest by
    ``1 / (1 - rate)``. Identity when ``deterministic``: layers start in inference mode, as a
    Keras layer called without ``training=True``; ``model.train()`` (what ``fit`` does inside its
    step) switches dropout on, ``model.eval()`` off again.

    Randomness comes from the ``dropout`` stream of ``rngs``; the training step reseeds it
    with an explicit per-step key.

    Args:
      rate: fraction of the inputs to zero, in [0, 1).
      noise_shape: shape of the mask, broadcast over the input; ``None`` entries take the
        input's size. Keras's ``(None, 1, 1, 1)`` drops whole examples (EfficientNet's
        stochastic depth).
      rngs: ``nnx.Rngs``; the ``dropout`` stream draws the masks.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype: a policy name (``"mixed_bfloat16"``) or a dtype; ``None`` is the
        global policy (see ``jaxvision.layers.precision``). Floating inputs are cast to it.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> drop = Dropout(0.5, rngs=nnx.Rngs(0))
        >>> drop(jnp.ones((3,)))
        Array([1., 1., 1.], dtype=float32)
        >>> drop.train(); int((drop(jnp.ones((1000,))) == 0).sum())
        486
    """

    def __init__(self, rate: float, noise_shape: tuple[int | None, ...] | None = None, *, rngs: nnx.Rngs,
                 name: str | None = None, dtype: PolicyLike | None = None):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate, self.name = rate, name
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.dtype = layer_dtypes(dtype, None)[0]
        self.deterministic = True
        self.rngs = rngs.dropout

    def __call__(self, x: jax.Array) -> jax.Array:
        x = autocast(jnp.asarray(x), self.dtype)
        if self.deterministic or self.rate == 0.0:
            return x
        shape = x.shape
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(f"{layer_label(self)}: noise_shape {self.noise_shape} has {len(self.noise_shape)} "
                                 f"axes but the input has shape {tuple(x.shape)}")
            shape = tuple(n if m is None else m for n, m in zip(x.shape, self.noise_shape))
        keep = jax.random.bernoulli(self.rngs(), 1.0 - self.rate, shape)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))


class Rescaling(Layer):
    """``x * scale + offset``, e.g. ``Rescaling(1 / 255)`` for [0, 255] images.

    Args:
      scale: the factor.
      offset: added after scaling.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy). Inputs of any
        numeric dtype, uint8 images included, are cast to it, as in Keras.

    Examples:
        >>> import jax.numpy as jnp
        >>> Rescaling(1 / 127.5, offset=-1.0)(jnp.array([0.0, 255.0]))
        Array([-1.,  1.], dtype=float32)
    """

    def __init__(self, scale: float, offset: float = 0.0, *, name: str | None = None,
                 dtype: PolicyLike | None = None):
        self.scale, self.offset, self.name = scale, offset, name
        self.dtype = layer_dtypes(dtype, None)[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x).astype(self.dtype)
        return x * jnp.asarray(self.scale, self.dtype) + jnp.asarray(self.offset, self.dtype)


class Flatten(Layer):
    """Flatten all axes but the batch axis (row-major, as Keras on channels-last).

    Examples:
        >>> import jax.numpy as jnp
        >>> Flatten()(jnp.ones((2, 3, 3, 4))).shape
        (2, 36)
    """

    def __init__(self, *, name: str | None = None, dtype: PolicyLike | None = None):
        self.name = name
        self.dtype = layer_dtypes(dtype, None)[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        x = autocast(jnp.asarray(x), self.dtype)
        # Not reshape(batch, -1): -1 cannot be resolved when the batch is empty.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))
