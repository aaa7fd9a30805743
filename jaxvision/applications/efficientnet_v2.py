"""EfficientNetV2B0…B3, S, M, L (Tan & Le, 2021) exactly as ``keras.applications`` builds them.

Keras's names: with ``include_preprocessing``, ``rescaling`` and, for B0…B3, ``normalization``
(ImageNet mean and variance as constants, so no weights) inside the model; S, M and L
rescale to [-1, 1] (x / 128 − 1) instead. ``preprocess_input`` is the identity, as in
Keras. Then ``stem_conv``, ``stem_bn``, ``stem_activation``; blocks ``block{stage}{a,b,…}_``:
the fused MBConv stages ``expand_conv`` (the k×k convolution), ``expand_bn``,
``expand_activation``, ``project_conv``, ``project_bn`` (``project_activation`` without
expansion), and the MBConv stages as EfficientNet's (``dwconv2``, ``bn``, ``activation``,
``se_*``, ``project_*``), each ending in ``drop`` (per-example Dropout) and ``add`` when the
shape is kept; then ``top_conv``, ``top_bn``, ``top_activation`` (the Grad-CAM layer),
``avg_pool``, ``top_dropout``, ``predictions``. Swish; BatchNormalization momentum 0.9,
epsilon 1e-3; every convolution is "same".
"""

import math
import os

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling, named
from jaxvision.applications.efficientnet import squeeze_excite
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.mobilenet_v3 import preprocess_input
from jaxvision.applications.pretrained import check_input_shape, keras_application
from jaxvision.layers import (Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, Dropout, Normalization,
                              Rescaling)
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["decode_predictions", "preprocess_input"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
# (kernel, repeats, filters in, filters out, expand ratio, se ratio, stride, fused) per stage.
B_BLOCKS = ((3, 1, 32, 16, 1, 0, 1, True), (3, 2, 16, 32, 4, 0, 2, True), (3, 2, 32, 48, 4, 0, 2, True),
            (3, 3, 48, 96, 4, 0.25, 2, False), (3, 5, 96, 112, 6, 0.25, 1, False),
            (3, 8, 112, 192, 6, 0.25, 2, False))
BLOCKS = {
    "s": ((3, 2, 24, 24, 1, 0, 1, True), (3, 4, 24, 48, 4, 0, 2, True), (3, 4, 48, 64, 4, 0, 2, True),
          (3, 6, 64, 128, 4, 0.25, 2, False), (3, 9, 128, 160, 6, 0.25, 1, False),
          (3, 15, 160, 256, 6, 0.25, 2, False)),
    "m": ((3, 3, 24, 24, 1, 0, 1, True), (3, 5, 24, 48, 4, 0, 2, True), (3, 5, 48, 80, 4, 0, 2, True),
          (3, 7, 80, 160, 4, 0.25, 2, False), (3, 14, 160, 176, 6, 0.25, 1, False),
          (3, 18, 176, 304, 6, 0.25, 2, False), (3, 5, 304, 512, 6, 0.25, 1, False)),
    "l": ((3, 4, 32, 32, 1, 0, 1, True), (3, 7, 32, 64, 4, 0, 2, True), (3, 7, 64, 96, 4, 0, 2, True),
          (3, 10, 96, 192, 4, 0.25, 2, False), (3, 19, 192, 224, 6, 0.25, 1, False),
          (3, 25, 224, 384, 6, 0.25, 2, False), (3, 7, 384, 640, 6, 0.25, 1, False)),
} | {b: B_BLOCKS for b in ("b0", "b1", "b2", "b3")}
# width, depth, default size of each variant (dropout 0.2 and drop-connect 0.2 for all).
VARIANTS = {"b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260), "b3": (1.2, 1.4, 300),
            "s": (1.0, 1.0, 384), "m": (1.0, 1.0, 480), "l": (1.0, 1.0, 480)}
WEIGHT_NAMES = {"b0": "b0", "b1": "b1", "b2": "b2", "b3": "b3", "s": "-s", "m": "-m", "l": "-l"}


class EfficientNetV2(Functional):
    """The EfficientNetV2 graph of ``variant`` ("b0" … "b3", "s", "m", "l")."""

    def __init__(self, variant: str, include_top: bool, pooling: str | None, classes: int,
                 classifier_activation: str | None, include_preprocessing: bool, rngs: nnx.Rngs,
                 dropout_rate: float = 0.2, drop_connect_rate: float = 0.2, bn_momentum: float = 0.9,
                 activation: str = "swish"):
        width, depth, _ = VARIANTS[variant]
        check_pooling(f"EfficientNetV2{variant.upper()}", pooling)

        def round_filters(filters: int, divisor: int = 8) -> int:
            return int(max(8, int(filters * width + divisor / 2) // divisor * divisor))

        def bn(channels: int, name: str) -> BatchNormalization:
            return BatchNormalization(channels, momentum=bn_momentum, rngs=rngs, name=name)

        g = GraphBuilder(self)
        x = INPUT
        if include_preprocessing:
            if variant.startswith("b"):
                x = g(Rescaling(1.0 / 255), x)
                x = g(Normalization(3, mean=(0.485, 0.456, 0.406), variance=(0.229**2, 0.224**2, 0.225**2)), x)
            else:
                x = g(Rescaling(1.0 / 128.0, offset=-1), x)
        blocks_args = BLOCKS[variant]
        stem = round_filters(blocks_args[0][2])
        x = g(Conv2D(3, stem, 3, strides=2, padding="same", use_bias=False, rngs=rngs, name="stem_conv"), x)
        x = g(bn(stem, "stem_bn"), x)
        x = g(Activation(activation, name="stem_activation"), x)
        repeats_of = [int(math.ceil(depth * args[1])) for args in blocks_args]
        blocks = float(sum(args[1] for args in blocks_args))  # Keras divides by the unscaled total
        b = 0
        for i, ((kernel, _, filters_in, filters_out, expand_ratio, se_ratio, stride, fused), repeats) in enumerate(
                zip(blocks_args, repeats_of)):
            filters_in, filters_out = round_filters(filters_in), round_filters(filters_out)
            for j in range(repeats):
                if j > 0:
                    stride, filters_in = 1, filters_out
                name, inputs, drop_rate = f"block{i + 1}{chr(j + 97)}_", x, drop_connect_rate * b / blocks
                filters = filters_in * expand_ratio
                if expand_ratio != 1:
                    k, s = (kernel, stride) if fused else (1, 1)
                    x = g(Conv2D(filters_in, filters, k, strides=s, padding="same", use_bias=False, rngs=rngs,
                                 name=f"{name}expand_conv"), x)
                    x = g(bn(filters, f"{name}expand_bn"), x)
                    x = g(Activation(activation, name=f"{name}expand_activation"), x)
                if not fused:
                    x = g(DepthwiseConv2D(filters, kernel, strides=stride, padding="same", use_bias=False, rngs=rngs,
                                          name=f"{name}dwconv2"), x)
                    x = g(bn(filters, f"{name}bn"), x)
                    x = g(Activation(activation, name=f"{name}activation"), x)
                if 0 < se_ratio <= 1:
                    x = squeeze_excite(g, x, filters, max(1, int(filters_in * se_ratio)), activation, name, rngs)
                k, s = (1, 1) if (expand_ratio != 1 or not fused) else (kernel, stride)
                x = g(Conv2D(filters, filters_out, k, strides=s, padding="same", use_bias=False, rngs=rngs,
                             name=f"{name}project_conv"), x)
                x = g(bn(filters_out, f"{name}project_bn"), x)
                if fused and expand_ratio == 1:
                    x = g(Activation(activation, name=f"{name}project_activation"), x)
                if stride == 1 and filters_in == filters_out:
                    if drop_rate:
                        x = g(Dropout(drop_rate, noise_shape=(None, 1, 1, 1), rngs=rngs, name=f"{name}drop"), x)
                    x = g(Add(), [x, inputs], name=f"{name}add")
                b += 1
        top = round_filters(1280)
        x = g(Conv2D(filters_out, top, 1, padding="same", use_bias=False, rngs=rngs, name="top_conv"), x)
        x = g(bn(top, "top_bn"), x)
        x = g(Activation(activation, name="top_activation"), x)
        g.finish(add_top(g, x, top, include_top=include_top, pooling=pooling, classes=classes,
                         classifier_activation=classifier_activation, rngs=rngs, named_pooling=True,
                         dropout_rate=dropout_rate))


def _define(variant: str):
    """Register ``efficientnet_v2_<variant>`` and return Keras's ``EfficientNetV2<VARIANT>`` constructor."""
    keras_name = f"EfficientNetV2{variant.upper()}"

    def builder(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", include_preprocessing: bool = True,
                seed: int = 0) -> Functional:
        return EfficientNetV2(variant, include_top, pooling, classes, classifier_activation,
                                    include_preprocessing, model_rngs(seed))

    register(named(builder, f"efficientnet_v2_{variant}", __name__,
                   f"{keras_name} with random weights (what checkpoints rebuild before restoring theirs)."))

    def constructor(include_top: bool = True, weights: str | os.PathLike | None = None,
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None, classes: int = 1000,
                    classifier_activation: str | None = "softmax", include_preprocessing: bool = True,
                    seed: int = 0, manifest: str | os.PathLike | dict | None = None) -> Functional:
        check_input_shape(keras_name, input_shape, 32, VARIANTS[variant][2], weights=weights, include_top=include_top)
        keras_file = f"efficientnetv2{WEIGHT_NAMES[variant]}{'' if include_top else '_notop'}.h5"
        return keras_application(keras_name, f"efficientnet_v2_{variant}", weights, include_top=include_top,
                                 classes=classes, pooling=pooling, keras_file=keras_file,
                                 url=BASE_WEIGHTS_URL + keras_file, manifest=manifest,
                                 classifier_activation=classifier_activation,
                                 include_preprocessing=include_preprocessing, seed=seed)

    doc = f"""``keras.applications.{keras_name}``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation, include_preprocessing: as in Keras.
      input_shape: checked only, by Keras's rules (at least 32 × 32; {VARIANTS[variant][2]}² with ImageNet
        weights and the top): every convolution is "same", so the graph is the same for any size.
      weights: ``None`` (random, the default here), ``"imagenet"`` (Keras's
        ``efficientnetv2{WEIGHT_NAMES[variant]}[_notop].h5`` under ``$JAXVISION_DATA/pretrained/``,
        else downloaded) or a path to a Keras weights file.
      seed: for the random initial weights and dropout.
      manifest: a weights manifest the loaded file must match.

    Inputs are [0, 255] pixels: the model rescales them itself (``include_preprocessing``).
    """
    return builder, named(constructor, keras_name, __name__, doc)


efficientnet_v2_b0, EfficientNetV2B0 = _define("b0")
efficientnet_v2_b1, EfficientNetV2B1 = _define("b1")
efficientnet_v2_b2, EfficientNetV2B2 = _define("b2")
efficientnet_v2_b3, EfficientNetV2B3 = _define("b3")
efficientnet_v2_s, EfficientNetV2S = _define("s")
efficientnet_v2_m, EfficientNetV2M = _define("m")
efficientnet_v2_l, EfficientNetV2L = _define("l")
__all__ += [f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")]
__all__ += [f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")]
