"""EfficientNetB0…B7 (Tan & Le, 2019) exactly as ``keras.applications`` builds them.

Keras's names: ``rescaling`` (x / 255) and ``normalization`` (ImageNet's channel mean and
variance, stored as its weights) inside the model, so ``preprocess_input`` is the
identity, as in Keras (with ``weights="imagenet"`` Keras adds ``rescaling_1``, a further
1 / sqrt(std) per channel that its weight files assume, and so do we); ``stem_conv_pad``,
``stem_conv``, ``stem_bn``, ``stem_activation``; blocks ``block{stage}{a,b,…}_`` +
``expand_conv``, ``expand_bn``, ``expand_activation``, ``dwconv_pad`` (stride 2), ``dwconv``,
``bn``, ``activation``, ``se_squeeze``, ``se_reshape``, ``se_reduce``, ``se_expand``,
``se_excite`` (Multiply), ``project_conv``, ``project_bn``, ``drop`` (per-example Dropout, the
stochastic depth, rate growing linearly to 0.2) and ``add``; then ``top_conv``, ``top_bn``,
``top_activation`` (the Grad-CAM layer), ``avg_pool``, ``top_dropout``, ``predictions``.
Swish activations, BatchNormalization epsilon 1e-3 and momentum 0.99.
"""

import copy
import math
import os

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling, correct_pad, halve, keras_input_size, named
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.mobilenet_v3 import preprocess_input
from jaxvision.applications.pretrained import keras_application
from jaxvision.layers import (Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, Dropout,
                              GlobalAveragePooling2D, Multiply, Normalization, Rescaling, Reshape, ZeroPadding2D)
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["decode_predictions", "preprocess_input"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# (kernel, repeats, filters in, filters out, expand ratio, stride) of the seven stages; all
# with id_skip and squeeze-and-excitation ratio 0.25.
BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
          (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
# width, depth, default size, dropout of B0..B7.
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
            "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}


def squeeze_excite(g: GraphBuilder, x: str, filters: int, squeeze: int, activation: str, name: str,
                   rngs: nnx.Rngs) -> str:
    """EfficientNet's squeeze-and-excitation: GAP, reshape, reduce, sigmoid expand, multiply."""
    se = g(GlobalAveragePooling2D(name=f"{name}se_squeeze"), x)
    se = g(Reshape((1, 1, filters), name=f"{name}se_reshape"), se)
    se = g(Conv2D(filters, squeeze, 1, padding="same", activation=activation, rngs=rngs, name=f"{name}se_reduce"), se)
    se = g(Conv2D(squeeze, filters, 1, padding="same", activation="sigmoid", rngs=rngs, name=f"{name}se_expand"), se)
    return g(Multiply(), [x, se], name=f"{name}se_excite")



class EfficientNet(Functional):
    """The EfficientNet graph of ``variant`` ("b0" … "b7")."""

    def __init__(self, variant: str, include_top: bool, pooling: str | None, classes: int,
                 classifier_activation: str | None, input_shape, imagenet_rescaling: bool, rngs: nnx.Rngs,
                 drop_connect_rate: float = 0.2, activation: str = "swish"):
        width, depth, default_size, dropout_rate = VARIANTS[variant]
        check_pooling(f"EfficientNet{variant.upper()}", pooling)
        size = keras_input_size(input_shape, include_top, default_size)

        def round_filters(filters: int, divisor: int = 8) -> int:
            filters *= width
            new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
            return int(new + divisor if new < 0.9 * filters else new)

        def round_repeats(repeats: int) -> int:
            return int(math.ceil(depth * repeats))

        g = GraphBuilder(self)
        x = g(Rescaling(1.0 / 255.0), INPUT)
        x = g(Normalization(3, rngs=rngs), x)
        if imagenet_rescaling:
            x = g(Rescaling(tuple(1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB)), x)
        x = g(ZeroPadding2D(correct_pad(size, 3), name="stem_conv_pad"), x)
        size = halve(size)
        stem = round_filters(32)
        x = g(Conv2D(3, stem, 3, strides=2, padding="valid", use_bias=False, rngs=rngs, name="stem_conv"), x)
        x = g(BatchNormalization(stem, rngs=rngs, name="stem_bn"), x)
        x = g(Activation(activation, name="stem_activation"), x)
        blocks = float(sum(round_repeats(b[1]) for b in BLOCKS))
        b = 0
        for i, (kernel, repeats, filters_in, filters_out, expand_ratio, stride) in enumerate(copy.deepcopy(BLOCKS)):
            filters_in, filters_out = round_filters(filters_in), round_filters(filters_out)
            for j in range(round_repeats(repeats)):
                if j > 0:
                    stride, filters_in = 1, filters_out
                name, inputs, drop_rate = f"block{i + 1}{chr(j + 97)}_", x, drop_connect_rate * b / blocks
                filters = filters_in * expand_ratio
                if expand_ratio != 1:
                    x = g(Conv2D(filters_in, filters, 1, padding="same", use_bias=False, rngs=rngs,
                                 name=f"{name}expand_conv"), x)
                    x = g(BatchNormalization(filters, rngs=rngs, name=f"{name}expand_bn"), x)
                    x = g(Activation(activation, name=f"{name}expand_activation"), x)
                if stride == 2:
                    x = g(ZeroPadding2D(correct_pad(size, kernel), name=f"{name}dwconv_pad"), x)
                    size = halve(size)
                x = g(DepthwiseConv2D(filters, kernel, strides=stride, padding="same" if stride == 1 else "valid",
                                      use_bias=False, rngs=rngs, name=f"{name}dwconv"), x)
                x = g(BatchNormalization(filters, rngs=rngs, name=f"{name}bn"), x)
                x = g(Activation(activation, name=f"{name}activation"), x)
                x = squeeze_excite(g, x, filters, max(1, int(filters_in * 0.25)), activation, name, rngs)
                x = g(Conv2D(filters, filters_out, 1, padding="same", use_bias=False, rngs=rngs,
                             name=f"{name}project_conv"), x)
                x = g(BatchNormalization(filters_out, rngs=rngs, name=f"{name}project_bn"), x)
                if stride == 1 and filters_in == filters_out:
                    if drop_rate > 0:
                        x = g(Dropout(drop_rate, noise_shape=(None, 1, 1, 1), rngs=rngs, name=f"{name}drop"), x)
                    x = g(Add(), [x, inputs], name=f"{name}add")
                b += 1
        top = round_filters(1280)
        x = g(Conv2D(round_filters(320), top, 1, padding="same", use_bias=False, rngs=rngs, name="top_conv"), x)
        x = g(BatchNormalization(top, rngs=rngs, name="top_bn"), x)
        x = g(Activation(activation, name="top_activation"), x)
        g.finish(add_top(g, x, top, include_top=include_top, pooling=pooling, classes=classes,
                         classifier_activation=classifier_activation, rngs=rngs, named_pooling=True,
                         dropout_rate=dropout_rate))


def _define(variant: str):
    """Register ``efficientnet_<variant>`` and return Keras's ``EfficientNet<VARIANT>`` constructor."""
    keras_name = f"EfficientNet{variant.upper()}"

    def builder(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", input_shape: list[int] | None = None,
                imagenet_rescaling: bool = False, seed: int = 0) -> Functional:
        return EfficientNet(variant, include_top, pooling, classes, classifier_activation, input_shape,
                                  imagenet_rescaling, model_rngs(seed))

    register(named(builder, f"efficientnet_{variant}", __name__,
                   f"{keras_name} with random weights (what checkpoints rebuild); ``imagenet_rescaling`` adds "
                   "the 1 / sqrt(std) layer Keras adds for its ImageNet weights."))

    def constructor(include_top: bool = True, weights: str | os.PathLike | None = None,
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None, classes: int = 1000,
                    classifier_activation: str | None = "softmax", seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> Functional:
        keras_file = f"efficientnet{variant}{'' if include_top else '_notop'}.h5"
        return keras_application(keras_name, f"efficientnet_{variant}", weights, include_top=include_top,
                                 classes=classes, pooling=pooling, keras_file=keras_file,
                                 url=BASE_WEIGHTS_URL + keras_file, manifest=manifest,
                                 classifier_activation=classifier_activation,
                                 input_shape=None if input_shape is None else list(input_shape),
                                 imagenet_rescaling=weights == "imagenet", seed=seed)

    doc = f"""``keras.applications.{keras_name}``: the same arguments, layer names and weight files.

    Args:
      include_top, input_shape, pooling, classes, classifier_activation: as in Keras.
        ``input_shape`` is the size Keras would build for (default {VARIANTS[variant][2]}² with the top,
        unknown without); it sets the padding before stride-2 depthwise convolutions.
      weights: ``None`` (random, the default here), ``"imagenet"`` (Keras's
        ``efficientnet{variant}[_notop].h5`` under ``$JAXVISION_DATA/pretrained/``, else
        downloaded; adds Keras's ``rescaling_1``) or a path to a Keras weights file.
      seed: for the random initial weights and dropout.
      manifest: a weights manifest the loaded file must match.

    Inputs are [0, 255] pixels: the model rescales them itself.
    """
    return builder, named(constructor, keras_name, __name__, doc)


efficientnet_b0, EfficientNetB0 = _define("b0")
efficientnet_b1, EfficientNetB1 = _define("b1")
efficientnet_b2, EfficientNetB2 = _define("b2")
efficientnet_b3, EfficientNetB3 = _define("b3")
efficientnet_b4, EfficientNetB4 = _define("b4")
efficientnet_b5, EfficientNetB5 = _define("b5")
efficientnet_b6, EfficientNetB6 = _define("b6")
efficientnet_b7, EfficientNetB7 = _define("b7")
__all__ += [f"EfficientNetB{i}" for i in range(8)] + [f"efficientnet_b{i}" for i in range(8)]
