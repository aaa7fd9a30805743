"""The segmenter of DLwP ch. 11: a strided-Conv2D encoder and a Conv2DTranspose decoder
with a per-pixel softmax (2,880,643 parameters for 3 classes), and a second variant with the
remedies of ch. 9 (batch normalization and residual connections)."""

from collections.abc import Sequence

import jax
from flax import nnx

from jaxvision.layers import Activation, BatchNormalization, Conv2D, Conv2DTranspose, Rescaling
from jaxvision.models.base import Model, Sequential, Tap
from jaxvision.models.registry import register
from jaxvision.models.rngs import model_rngs

DOWNSAMPLING = 8  # three stride-2 "same" convs, undone by three stride-2 transposed convs


def check_image_size(builder: str, image_size: Sequence[int]) -> None:
    if any(s % DOWNSAMPLING for s in image_size):
        fix = tuple(DOWNSAMPLING * max(1, round(s / DOWNSAMPLING)) for s in image_size)
        raise ValueError(
            f"{builder}: image_size {tuple(image_size)} must be divisible by {DOWNSAMPLING} in both "
            f"dimensions (the encoder downsamples by {DOWNSAMPLING} and the decoder upsamples by "
            f"{DOWNSAMPLING}); use e.g. {fix}")


@register
def segmentation_model(image_size: Sequence[int] = (200, 200), num_classes: int = 3, seed: int = 0) -> Sequential:
    """The book's ``get_model(image_size, num_classes)``.

    The encoder rounds odd sizes up at each stride-2 step and the decoder doubles exactly,
    so only sizes divisible by 8 come back at their own size; others are refused.

    Examples:
        >>> import jax.numpy as jnp
        >>> segmentation_model((64, 48))(jnp.zeros((1, 64, 48, 3))).shape
        (1, 64, 48, 3)
    """
    check_image_size("segmentation_model", image_size)
    rngs = model_rngs(seed)
    layers = [Rescaling(1 / 255)]
    channels = 3
    for filters in (64, 128, 256):
        layers.append(Conv2D(channels, filters, 3, strides=2, padding="same", activation="relu", rngs=rngs))
        layers.append(Conv2D(filters, filters, 3, padding="same", activation="relu", rngs=rngs))
        channels = filters
    for filters in (256, 128, 64):
        layers.append(Conv2DTranspose(channels, filters, 3, padding="same", activation="relu", rngs=rngs))
        layers.append(Conv2DTranspose(filters, filters, 3, strides=2, padding="same", activation="relu", rngs=rngs))
        channels = filters
    layers.append(Conv2D(channels, num_classes, 3, padding="same", activation="softmax", rngs=rngs))
    return Sequential(layers)


get_model = segmentation_model  # the book's name


class ResidualSegmenter(Model):
    """The book's encoder/decoder with ch. 9's remedies: every conv is followed by
    BatchNormalization and ReLU, and each stride-2 stage adds a 1×1 strided projection of its
    input (a residual connection), as the mini-Xception does.

    Tapped names per stage *s* (``down1``–``down3``, ``up1``–``up3``): ``{s}_conv1``,
    ``{s}_bn1``, ``{s}_act1``, ``{s}_conv2``, ``{s}_bn2``, ``{s}_act2``, ``{s}_residual``,
    ``{s}_add``; plus ``rescaling`` and the softmax ``head``.
    """

    def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs):
        self.rescaling = Rescaling(1 / 255)
        stages = []
        channels = 3
        for stage, filters in (("down1", 64), ("down2", 128), ("down3", 256),
                               ("up1", 256), ("up2", 128), ("up3", 64)):
            conv = Conv2D if stage.startswith("down") else Conv2DTranspose
            # Downsampling stages stride their first conv, upsampling stages their second,
            # as in the book's model.
            first, second = (2, 1) if conv is Conv2D else (1, 2)
            setattr(self, f"{stage}_conv1", conv(channels, filters, 3, strides=first, padding="same", use_bias=False, rngs=rngs))
            setattr(self, f"{stage}_bn1", BatchNormalization(filters, rngs=rngs))
            setattr(self, f"{stage}_act1", Activation("relu"))
            setattr(self, f"{stage}_conv2", conv(filters, filters, 3, strides=second, padding="same", use_bias=False, rngs=rngs))
            setattr(self, f"{stage}_bn2", BatchNormalization(filters, rngs=rngs))
            setattr(self, f"{stage}_act2", Activation("relu"))
            setattr(self, f"{stage}_residual", conv(channels, filters, 1, strides=2, padding="same", use_bias=False, rngs=rngs))
            stages.append(stage)
            channels = filters
        self.stages = tuple(stages)
        self.head = Conv2D(channels, num_classes, 3, padding="same", activation="softmax", rngs=rngs)
        # Keras's layer order (weight files pair layers by it); attribute order is lost on nnx.merge.
        self.layer_names = tuple(k for k, v in vars(self).items() if isinstance(v, nnx.Module))

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        x = tap("rescaling", self.rescaling(x))
        for stage in self.stages:
            residual = x
            for step in ("conv1", "bn1", "act1", "conv2", "bn2", "act2"):
                x = tap(f"{stage}_{step}", getattr(self, f"{stage}_{step}")(x))
            residual = tap(f"{stage}_residual", getattr(self, f"{stage}_residual")(residual))
            x = tap(f"{stage}_add", x + residual)
        return tap("head", self.head(x))


@register
def residual_segmentation_model(image_size: Sequence[int] = (200, 200), num_classes: int = 3,
                                seed: int = 0) -> ResidualSegmenter:
    """The second, clearly labelled variant: ``ResidualSegmenter``.

    Examples:
        >>> import jax.numpy as jnp
        >>> residual_segmentation_model((32, 40))(jnp.zeros((1, 32, 40, 3))).shape
        (1, 32, 40, 3)
    """
    check_image_size("residual_segmentation_model", image_size)
    return ResidualSegmenter(num_classes, rngs=model_rngs(seed))
