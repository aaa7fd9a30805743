"""Keras's RMSprop: ε inside the square root, optional momentum and centring."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxvision.optimizers._learning_rate import LearningRate, learning_rate_at


class RMSpropState(NamedTuple):
    iterations: jax.Array  # steps taken, int32
    velocities: optax.Updates
    momentums: optax.Updates | None  # only with momentum > 0
    average_gradients: optax.Updates | None  # only when centered


def RMSprop(learning_rate: LearningRate = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
            centered: bool = False) -> optax.GradientTransformation:
    """``keras.optimizers.RMSprop`` as an optax transformation, with Keras's names and defaults.

    Its step is ``lr·g/√(v+ε)`` with ``v ← ρv + (1−ρ)g²`` (``v − ḡ²`` when centred).

    Args:
        learning_rate: a float, or a schedule ``step -> rate`` called with the number of
            steps already taken.
        rho: decay rate of the mean square of the gradients.
        momentum: momentum of the increments (none at 0).
        epsilon: added to the mean square inside the square root.
        centered: divide by the gradients' estimated variance instead of their mean square.

    Examples:
        >>> import jax.numpy as jnp
        >>> optimizer = RMSprop(learning_rate=0.01)
        >>> params = jnp.zeros(2)
        >>> updates, state = optimizer.update(jnp.array([1.0, -1.0]), optimizer.init(params), params)
        >>> # -lr·g/√(0.1·g² + ε) on the first step (with a tolerance: the last digit depends on the CPU)
        >>> bool(jnp.allclose(updates, jnp.array([-0.03162276, 0.03162276]), rtol=1e-6, atol=0))
        True
    """

    def init(params: optax.Params) -> RMSpropState:
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        return RMSpropState(jnp.zeros((), jnp.int32), zeros(), zeros() if momentum > 0 else None,
                            zeros() if centered else None)

    def update(grads: optax.Updates, state: RMSpropState, params: optax.Params | None = None):
        del params
        grads = jax.tree.map(lambda g, v: g.astype(v.dtype), grads, state.velocities)
        velocities = jax.tree.map(lambda g, v: rho * v + (1 - rho) * jnp.square(g), grads, state.velocities)
        if centered:
            average_gradients = jax.tree.map(lambda g, a: rho * a + (1 - rho) * g, grads, state.average_gradients)
            denominators = jax.tree.map(lambda v, a: v - jnp.square(a) + epsilon, velocities, average_gradients)
        else:
            average_gradients = None
            denominators = jax.tree.map(lambda v: v + epsilon, velocities)
        increments = jax.tree.map(
            lambda g, d: learning_rate_at(learning_rate, state.iterations, g.dtype) * g / jnp.sqrt(d),
            grads, denominators)
        if momentum > 0:
            momentums = jax.tree.map(lambda m, i: momentum * m + i, state.momentums, increments)
            increments = momentums
        else:
            momentums = None
        updates = jax.tree.map(jnp.negative, increments)
        return updates, RMSpropState(state.iterations + 1, velocities, momentums, average_gradients)

    return optax.GradientTransformation(init, update)
