"""Keras-exact vision layers written on ``jax.lax``, one concept per file."""

from jaxvision.layers.conv import Conv2D
from jaxvision.layers.core import Activation, Dense, Dropout, Flatten, Rescaling, get_activation

__all__ = ["Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Rescaling", "get_activation"]
