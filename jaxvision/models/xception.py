"""The mini-Xception of DLwP ch. 9: residual connections, batch normalization and
depthwise separable convolutions (721,857 parameters as Keras counts them)."""

import jax
from flax import nnx

from jaxvision.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout,
                              GlobalAveragePooling2D, MaxPooling2D, Rescaling, SeparableConv2D)
from jaxvision.models.augmentation import data_augmentation
from jaxvision.models.base import Model, Tap
from jaxvision.models.registry import register
from jaxvision.models.rngs import model_rngs

BLOCK_SIZES = (32, 64, 128, 256, 512)


class MiniXception(Model):
    """Ch. 9's mini Xception-like model (unnumbered, after listing 9.5): Conv2D(32, 5), five blocks of
    BN → ReLU → SeparableConv2D → BN → ReLU → SeparableConv2D → MaxPool(3, 2, "same"),
    each added to a strided 1×1 projection of its input; then GAP, Dropout(0.5), sigmoid.

    Tapped names: ``data_augmentation``, ``rescaling``, ``conv2d``, and per block *i* (1–5)
    ``block{i}_bn1``, ``block{i}_act1``, ``block{i}_sepconv1``, ``block{i}_bn2``,
    ``block{i}_act2``, ``block{i}_sepconv2``, ``block{i}_pool``, ``block{i}_residual``,
    ``block{i}_add``; then ``global_average_pooling2d``, ``dropout``, ``dense``.

    Examples:
        >>> import jax.numpy as jnp
        >>> model = MiniXception(rngs=model_rngs(0))
        >>> model(jnp.zeros((1, 64, 64, 3))).shape
        (1, 1)
    """

    def __init__(self, augmented: bool = True, dropout: float = 0.5, *, rngs: nnx.Rngs):
        self.augmented = augmented
        if augmented:
            self.data_augmentation = data_augmentation(rngs)
        self.rescaling = Rescaling(1 / 255)
        self.conv2d = Conv2D(3, 32, 5, use_bias=False, rngs=rngs)
        channels = 32
        for i, size in enumerate(BLOCK_SIZES, start=1):
            setattr(self, f"block{i}_bn1", BatchNormalization(channels, rngs=rngs))
            setattr(self, f"block{i}_act1", Activation("relu"))
            setattr(self, f"block{i}_sepconv1", SeparableConv2D(channels, size, 3, padding="same", use_bias=False, rngs=rngs))
            setattr(self, f"block{i}_bn2", BatchNormalization(size, rngs=rngs))
            setattr(self, f"block{i}_act2", Activation("relu"))
            setattr(self, f"block{i}_sepconv2", SeparableConv2D(size, size, 3, padding="same", use_bias=False, rngs=rngs))
            setattr(self, f"block{i}_pool", MaxPooling2D(3, strides=2, padding="same"))
            setattr(self, f"block{i}_residual", Conv2D(channels, size, 1, strides=2, padding="same", use_bias=False, rngs=rngs))
            channels = size
        self.global_average_pooling2d = GlobalAveragePooling2D()
        self.dropout = Dropout(dropout, rngs=rngs)
        self.dense = Dense(channels, 1, activation="sigmoid", rngs=rngs)
        # Keras's layer order (weight files pair layers by it); attribute order is lost on nnx.merge.
        self.layer_names = tuple(k for k, v in vars(self).items() if isinstance(v, nnx.Module))

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        if self.augmented:
            x = tap("data_augmentation", self.data_augmentation(x))
        x = tap("rescaling", self.rescaling(x))
        x = tap("conv2d", self.conv2d(x))
        for i in range(1, len(BLOCK_SIZES) + 1):
            residual = x
            for step in ("bn1", "act1", "sepconv1", "bn2", "act2", "sepconv2", "pool"):
                x = tap(f"block{i}_{step}", getattr(self, f"block{i}_{step}")(x))
            residual = tap(f"block{i}_residual", getattr(self, f"block{i}_residual")(residual))
            x = tap(f"block{i}_add", x + residual)
        x = tap("global_average_pooling2d", self.global_average_pooling2d(x))
        x = tap("dropout", self.dropout(x))
        return tap("dense", self.dense(x))


@register
def mini_xception(augmented: bool = True, seed: int = 0) -> MiniXception:
    """The ch. 9 mini-Xception, with the listing 8.18 augmentation unless ``augmented=False``."""
    return MiniXception(augmented=augmented, rngs=model_rngs(seed))
