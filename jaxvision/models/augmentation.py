"""The data augmentation stage of DLwP listing 8.18, shared by the ch. 8 and ch. 9 models."""

from flax import nnx

from jaxvision.layers import RandomFlip, RandomRotation, RandomZoom
from jaxvision.models.base import Sequential


def data_augmentation(rngs: nnx.Rngs) -> Sequential:
    """Listing 8.18: horizontal flip, rotation ±0.1 turn, zoom ±20%."""
    return Sequential([RandomFlip("horizontal", rngs=rngs), RandomRotation(0.1, rngs=rngs),
                       RandomZoom(0.2, rngs=rngs)])
