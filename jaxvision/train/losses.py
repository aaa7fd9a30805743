"""Cross-entropy losses with Keras 3 numerics: each is ``(y_true, y_pred) -> scalar mean``.

Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before the log, exactly as
``keras/src/backend/jax/nn.py`` does, so a confident wrong prediction costs
``-log(1e-7) ≈ 16.1`` rather than infinity. The per-example losses are averaged over every
remaining axis ("sum_over_batch_size"), so the same functions score per-pixel segmentation.

Predictions are cast to (at least) float32 first, as Keras's losses cast to their float32
dtype: in bfloat16, ``1 - 1e-7`` rounds to 1, so the clip would let ``log(0)`` through.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxvision.layers.precision import at_least_float32

EPSILON = 1e-7  # keras.backend.epsilon()

Loss = Callable[[jax.Array, jax.Array], jax.Array]


def same_rank(y_true: jax.Array, y_pred: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: labels (N,) against outputs (N, 1) and back."""
    if y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        return (y_true[..., None], y_pred) if y_true.ndim == 1 else (y_true, y_pred[..., 0])
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return (y_true, y_pred[..., None]) if y_pred.ndim == 1 else (y_true[..., 0], y_pred)
    return y_true, y_pred


def _predictions(y_pred: jax.Array) -> jax.Array:
    y_pred = jnp.asarray(y_pred)
    return y_pred.astype(at_least_float32(y_pred.dtype))


def _log_probabilities(y_pred: jax.Array, from_logits: bool) -> jax.Array:
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    # Keras renormalises (outputs may not sum to one) and then clips.
    y_pred = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(y_pred, EPSILON, 1.0 - EPSILON))


def sparse_categorical_crossentropy(y_true: jax.Array, y_pred: jax.Array, from_logits: bool = False) -> jax.Array:
    """Integer labels ``(N, ...)`` or ``(N, ..., 1)`` against class scores ``(N, ..., C)``.

    Works unchanged for segmentation: ``(N, H, W)`` masks against ``(N, H, W, C)`` outputs.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(sparse_categorical_crossentropy(jnp.array([0, 1]), jnp.array([[0.5, 0.5], [0.0, 1.0]]))), 4)
        0.3466
    """
    y_true, y_pred = jnp.asarray(y_true), _predictions(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_crossentropy: labels of shape {y_true.shape} need outputs of shape "
                         f"{y_true.shape} + (classes,), got {y_pred.shape}")
    one_hot = jax.nn.one_hot(y_true.astype(jnp.int32), y_pred.shape[-1], dtype=y_pred.dtype)
    return jnp.mean(-jnp.sum(one_hot * _log_probabilities(y_pred, from_logits), axis=-1))


def categorical_crossentropy(y_true: jax.Array, y_pred: jax.Array, from_logits: bool = False) -> jax.Array:
    """One-hot (or soft) labels against class scores of the same shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(categorical_crossentropy(jnp.array([[0.0, 1.0]]), jnp.array([[0.2, 0.8]]))), 4)
        0.2231
    """
    y_pred = _predictions(y_pred)
    y_true = jnp.asarray(y_true).astype(y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"categorical_crossentropy: labels {y_true.shape} and outputs {y_pred.shape} must have "
                         "the same shape; use sparse_categorical_crossentropy for integer labels")
    return jnp.mean(-jnp.sum(y_true * _log_probabilities(y_pred, from_logits), axis=-1))


def binary_crossentropy(y_true: jax.Array, y_pred: jax.Array, from_logits: bool = False) -> jax.Array:
    """0/1 labels against probabilities (or logits), averaged over the last axis, then the batch.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(binary_crossentropy(jnp.array([1.0, 0.0]), jnp.array([[0.9], [0.0]]))), 4)
        0.0527
    """
    y_pred = _predictions(y_pred)
    y_true, y_pred = same_rank(jnp.asarray(y_true).astype(y_pred.dtype), y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"binary_crossentropy: labels {y_true.shape} and outputs {y_pred.shape} must have "
                         "the same shape")
    if from_logits:
        values = -y_true * jax.nn.log_sigmoid(y_pred) - (1.0 - y_true) * jax.nn.log_sigmoid(-y_pred)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        values = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(jnp.mean(values, axis=-1))


def binary_crossentropy_from_logits(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """[binary_crossentropy][jaxvision.train.binary_crossentropy] on logits (a model without the final sigmoid)."""
    return binary_crossentropy(y_true, y_pred, from_logits=True)


LOSSES: dict[str, Loss] = {
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "binary_crossentropy_from_logits": binary_crossentropy_from_logits,
}


def get_loss(loss: str | Loss) -> Loss:
    """Resolve a loss name (see ``LOSSES``) or pass a callable through."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}, "
                         "or pass a callable (y_true, y_pred) -> scalar")
    return LOSSES[loss]
