"""A U-Net-style segmenter on an ImageNet MobileNet v1 encoder (beyond the book's ch. 11).

The encoder is `MobileNetV1` without its top, stored
as ``encoder`` so its layers keep Keras's names (``encoder/conv_pw_13_relu``) and its
ImageNet weights load by name (`load_encoder_weights`). The decoder climbs back from
stride 32 to the input size in five ×2 steps: four blocks of a stride-2 ``Conv2DTranspose``,
``BatchNormalization`` and ReLU, each concatenated with the encoder's activation of the same
size (the skip connections, read from the encoder's named taps), then a bilinear
``UpSampling2D`` and a 3×3 softmax ``Conv2D`` head, as the TensorFlow segmentation tutorial's
pix2pix decoder does.

Tapped names beyond ``encoder/...``: ``preprocessing``, ``encoder``, ``up{i}_conv``,
``up{i}_bn``, ``up{i}_relu``, ``up{i}_concat`` (i = 1…4), ``head_upsampling``, ``head``.
"""

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.applications.mobilenet import MobileNetV1, load_mobilenet_weights
from jaxvision.layers import Activation, BatchNormalization, Conv2D, Conv2DTranspose, Rescaling, UpSampling2D
from jaxvision.models.base import Model, Tap
from jaxvision.models.registry import register
from jaxvision.models.rngs import model_rngs

# Encoder taps the decoder concatenates, deepest first: strides 16, 8, 4 and 2.
SKIPS = ("conv_pw_11_relu", "conv_pw_5_relu", "conv_pw_3_relu", "conv_pw_1_relu")
DOWNSAMPLING = 32


class MobileNetUNet(Model):
    """MobileNet v1 encoder (inputs in [0, 255], scaled to [-1, 1] inside) and a U-Net decoder.

    Args:
      num_classes: softmax outputs per pixel.
      alpha: the encoder's width multiplier (ImageNet weights exist for 0.25, 0.5, 0.75, 1.0).
      decoder_filters: filters of the four decoder blocks, deepest first.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Height and width must be multiples of 32 (the encoder's total stride).
    """

    def __init__(self, num_classes: int = 3, alpha: float = 0.75, decoder_filters: Sequence[int] = (128, 64, 32, 16),
                 *, rngs: nnx.Rngs):
        if len(decoder_filters) != len(SKIPS):
            raise ValueError(f"MobileNetUNet: decoder_filters needs {len(SKIPS)} values (one per skip "
                             f"connection), got {tuple(decoder_filters)}")
        self.num_classes, self.alpha, self.decoder_filters = num_classes, alpha, tuple(decoder_filters)
        self.preprocessing = Rescaling(1 / 127.5, offset=-1.0, name="preprocessing")
        self.encoder = MobileNetV1(alpha, include_top=False, rngs=rngs)
        skip_channels = {"conv_pw_1_relu": int(64 * alpha), "conv_pw_3_relu": int(128 * alpha),
                         "conv_pw_5_relu": int(256 * alpha), "conv_pw_11_relu": int(512 * alpha)}
        channels = int(1024 * alpha)
        for i, (filters, skip) in enumerate(zip(self.decoder_filters, SKIPS), start=1):
            setattr(self, f"up{i}_conv", Conv2DTranspose(channels, filters, 3, strides=2, padding="same",
                                                         use_bias=False, rngs=rngs, name=f"up{i}_conv"))
            setattr(self, f"up{i}_bn", BatchNormalization(filters, rngs=rngs, name=f"up{i}_bn"))
            setattr(self, f"up{i}_relu", Activation("relu", name=f"up{i}_relu"))
            channels = filters + skip_channels[skip]
        self.head_upsampling = UpSampling2D(2, interpolation="bilinear", name="head_upsampling")
        self.head = Conv2D(channels, num_classes, 3, padding="same", activation="softmax", rngs=rngs, name="head")
        self.layer_names = tuple(k for k, v in vars(self).items() if isinstance(v, nnx.Module))

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        if x.ndim != 4 or x.shape[1] % DOWNSAMPLING or x.shape[2] % DOWNSAMPLING:
            raise ValueError(f"MobileNetUNet: input height and width must be multiples of {DOWNSAMPLING} (the "
                             f"encoder's stride), got shape {tuple(x.shape)}")
        x = tap("preprocessing", self.preprocessing(x))
        skips: dict[str, jax.Array] = {}

        def keep_skips(name: str, value: jax.Array) -> jax.Array:
            value = tap(name, value)
            if name.removeprefix("encoder/") in SKIPS:
                skips[name.removeprefix("encoder/")] = value
            return value

        x = self.call_layer("encoder", x, keep_skips)
        for i, skip in enumerate(SKIPS, start=1):
            for step in ("conv", "bn", "relu"):
                x = self.call_layer(f"up{i}_{step}", x, tap)
            x = tap(f"up{i}_concat", jnp.concatenate([x, skips[skip].astype(x.dtype)], axis=-1))
        x = self.call_layer("head_upsampling", x, tap)
        return self.call_layer("head", x, tap)


@register
def mobilenet_unet(num_classes: int = 3, alpha: float = 0.75, decoder_filters: Sequence[int] = (128, 64, 32, 16),
                   seed: int = 0) -> MobileNetUNet:
    """`MobileNetUNet` with random weights;
    `load_encoder_weights` adds ImageNet's.

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: mobilenet_unet(num_classes=3, alpha=0.25))  # shapes only
        >>> shapes = model.layer_shapes((1, 64, 96, 3))
        >>> shapes["up1_concat"], shapes["head"]
        ((1, 4, 6, 256), (1, 64, 96, 3))
    """
    return MobileNetUNet(num_classes, alpha, tuple(decoder_filters), rngs=model_rngs(seed))


def load_encoder_weights(model: MobileNetUNet, weights: str | os.PathLike = "imagenet") -> MobileNetUNet:
    """Load MobileNet weights into ``model.encoder``: ``"imagenet"`` (Keras's file for the
    encoder's alpha at 224, or the offline TF.js copy under ``$JAXVISION_DATA/pretrained/``)
    or a Keras weights file. The decoder keeps its weights. Returns ``model``."""
    load_mobilenet_weights(model.encoder, weights)
    return model
