"""The learning rate of one step: a constant, or a schedule called with the step count."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

LearningRate = float | Callable[[jax.Array], jax.Array]


def learning_rate_at(learning_rate: LearningRate, count: jax.Array, dtype) -> jax.Array:
    """Keras calls a schedule with ``iterations``, the number of steps taken before this one."""
    value = learning_rate(count) if callable(learning_rate) else learning_rate
    return jnp.asarray(value, jnp.float32).astype(dtype)
