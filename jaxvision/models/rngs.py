"""The RNG streams of a book model, all derived from one seed."""

from flax import nnx


def model_rngs(seed: int) -> nnx.Rngs:
    """One seed for every stream a book model uses: weights, dropout and augmentation."""
    return nnx.Rngs(params=seed, dropout=seed + 1, augment=seed + 2)
