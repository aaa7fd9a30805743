"""Keras 3's optimizers as optax ``GradientTransformation``s: same names, defaults and
arithmetic, so a jaxvision ``fit`` follows Keras's weight trajectory.

Examples:
    >>> optimizer = get_optimizer("rmsprop")  # Keras's string names, with Keras's defaults
    >>> get_optimizer(optimizer) is optimizer
    True
"""

import functools

import optax

from jaxvision.optimizers.adam import Adam, AdamState
from jaxvision.optimizers.rmsprop import RMSprop, RMSpropState
from jaxvision.optimizers.sgd import SGD, SGDState

_BY_NAME = {"adam": Adam, "rmsprop": RMSprop, "sgd": SGD}


@functools.cache
def _default(name: str) -> optax.GradientTransformation:
    # One object per name, so fits with the same string share their compiled steps.
    return _BY_NAME[name]()


def get_optimizer(optimizer: str | optax.GradientTransformation) -> optax.GradientTransformation:
    """An optax transformation passed through, or a Keras optimizer name (``"adam"``,
    ``"rmsprop"``, ``"sgd"``, any case) with Keras's default hyperparameters."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _default(optimizer.lower())
    raise ValueError(f"optimizer: expected one of {sorted(_BY_NAME)} or an optax.GradientTransformation, "
                     f"got {optimizer!r}")


__all__ = ["SGD", "Adam", "AdamState", "RMSprop", "RMSpropState", "SGDState", "get_optimizer"]
