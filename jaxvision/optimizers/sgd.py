"""Keras's SGD, with Keras's momentum convention (the velocity holds ``−lr·g`` terms)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxvision.optimizers._learning_rate import LearningRate, learning_rate_at


class SGDState(NamedTuple):
    iterations: jax.Array  # steps taken, int32
    momentums: optax.Updates | None  # only with momentum > 0


def SGD(learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False
        ) -> optax.GradientTransformation:
    """``keras.optimizers.SGD`` as an optax transformation, with Keras's names and defaults.

    Without momentum the step is ``−lr·g``. With momentum, ``m ← momentum·m − lr·g`` and the
    step is ``m``, or ``momentum·m − lr·g`` with ``nesterov=True``.

    Args:
        learning_rate: a float, or a schedule ``step -> rate`` called with the number of
            steps already taken.
        momentum: a float in [0, 1]; 0 for plain gradient descent.
        nesterov: use Nesterov momentum.

    Examples:
        >>> import jax.numpy as jnp
        >>> optimizer = SGD(learning_rate=0.1, momentum=0.9)
        >>> params, state = jnp.zeros(1), optimizer.init(jnp.zeros(1))
        >>> for _ in range(2):
        ...     updates, state = optimizer.update(jnp.ones(1), state, params)
        >>> updates  # 0.9·(−0.1) − 0.1
        Array([-0.19], dtype=float32)
    """
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ValueError(f"SGD: momentum must be a float in [0, 1], got {momentum!r}")

    def init(params: optax.Params) -> SGDState:
        return SGDState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params) if momentum else None)

    def update(grads: optax.Updates, state: SGDState, params: optax.Params | None = None):
        del params
        lr_of = lambda g: learning_rate_at(learning_rate, state.iterations, g.dtype)  # noqa: E731
        if not momentum:
            return jax.tree.map(lambda g: -(g * lr_of(g)), grads), SGDState(state.iterations + 1, None)
        grads = jax.tree.map(lambda g, m: g.astype(m.dtype), grads, state.momentums)
        momentums = jax.tree.map(lambda g, m: m * momentum - g * lr_of(g), grads, state.momentums)
        if nesterov:
            updates = jax.tree.map(lambda g, m: m * momentum - g * lr_of(g), grads, momentums)
        else:
            updates = momentums
        return updates, SGDState(state.iterations + 1, momentums)

    return optax.GradientTransformation(init, update)
