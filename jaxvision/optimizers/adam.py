"""Keras's Adam, whose ε is added to √v *before* bias correction.

Keras's step is ``lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v+ε)``, while ``optax.adam`` divides by
``√v̂+ε`` after correcting ``v``, so their effective ε differs by ``√(1−β₂ᵗ)`` (about 30× at
the first step). This follows ``keras.optimizers.Adam`` operation by operation.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxvision.optimizers._learning_rate import LearningRate, learning_rate_at


class AdamState(NamedTuple):
    iterations: jax.Array  # steps taken, int32
    momentums: optax.Updates
    velocities: optax.Updates
    velocity_hats: optax.Updates | None  # only with amsgrad


def Adam(learning_rate: LearningRate = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
         amsgrad: bool = False) -> optax.GradientTransformation:
    """``keras.optimizers.Adam`` as an optax transformation, with Keras's names and defaults.

    Args:
        learning_rate: a float, or a schedule ``step -> rate`` called with the number of
            steps already taken (as Keras calls a ``LearningRateSchedule``).
        beta_1: decay rate of the first-moment estimate.
        beta_2: decay rate of the second-moment estimate.
        epsilon: added to ``√v`` before bias correction, as in Keras.
        amsgrad: use the maximum of past second moments (AMSGrad).

    Examples:
        >>> import jax.numpy as jnp
        >>> optimizer = Adam(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = optimizer.update({"w": jnp.array([0.5, -2.0])}, optimizer.init(params), params)
        >>> # ≈ -lr·sign(g) on the first step, as keras.optimizers.Adam(0.1) gives (compared with a
        >>> # tolerance: the last printed digit may differ between CPU models)
        >>> bool(jnp.allclose(updates["w"], jnp.array([-0.09999869, 0.09999917]), rtol=1e-6, atol=0))
        True
    """

    def init(params: optax.Params) -> AdamState:
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        return AdamState(jnp.zeros((), jnp.int32), zeros(), zeros(), zeros() if amsgrad else None)

    def update(grads: optax.Updates, state: AdamState, params: optax.Params | None = None):
        del params
        step = state.iterations + 1

        def moments(g, m, v):
            g = g.astype(m.dtype)
            return m + (g - m) * (1 - beta_1), v + (jnp.square(g) - v) * (1 - beta_2)

        pairs = jax.tree.map(moments, grads, state.momentums, state.velocities)
        is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
        momentums = jax.tree.map(lambda p: p[0], pairs, is_leaf=is_pair)
        velocities = jax.tree.map(lambda p: p[1], pairs, is_leaf=is_pair)
        velocity_hats = jax.tree.map(jnp.maximum, state.velocity_hats, velocities) if amsgrad else None

        def step_of(m, v):
            local_step = step.astype(m.dtype)
            beta_1_power = jnp.power(jnp.asarray(beta_1, m.dtype), local_step)
            beta_2_power = jnp.power(jnp.asarray(beta_2, m.dtype), local_step)
            alpha = learning_rate_at(learning_rate, state.iterations, m.dtype) * jnp.sqrt(1 - beta_2_power) / (
                1 - beta_1_power)
            return -((m * alpha) / (jnp.sqrt(v) + epsilon))

        updates = jax.tree.map(step_of, momentums, velocity_hats if amsgrad else velocities)
        return updates, AdamState(step, momentums, velocities, velocity_hats)

    return optax.GradientTransformation(init, update)
