"""The RNG streams of a book model, all derived from one seed."""

import jax
from flax import nnx

STREAMS = ("params", "dropout", "augment")


def model_rngs(seed: int) -> nnx.Rngs:
    """One seed for every stream a book model uses: weights, dropout and augmentation.

    Stream *i* starts from ``fold_in(key(seed), i)``, so no two streams of any two seeds
    share a key (seed ``s``'s dropout stream is not seed ``s + 1``'s weights).

    Examples:
        >>> rngs = model_rngs(0)
        >>> sorted(name for name in STREAMS if name in rngs)
        ['augment', 'dropout', 'params']
    """
    key = jax.random.key(seed)
    return nnx.Rngs(**{name: jax.random.fold_in(key, i) for i, name in enumerate(STREAMS)})
