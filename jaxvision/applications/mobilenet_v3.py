"""MobileNetV3Small and MobileNetV3Large (Howard et al., 2019) exactly as
``keras.applications`` builds them.

Keras's names: ``rescaling`` (with ``include_preprocessing``: x / 127.5 − 1 inside the model,
so ``preprocess_input`` is the identity, as in Keras), ``conv``, ``conv_bn``; blocks
``expanded_conv[_i]_expand``, ``_expand_bn``, ``_depthwise_pad`` (stride 2), ``_depthwise``,
``_depthwise_bn``, the squeeze-and-excitation ``_squeeze_excite_avg_pool``, ``_conv``,
``_relu``, ``_conv_1``, ``_mul``, then ``_project``, ``_project_bn``, ``_add``; ``conv_1``,
``conv_1_bn``; the top ``conv_2``, ``dropout``, ``logits``, ``flatten``, ``predictions``.
Activations are unnamed in Keras: ``re_lu``, ``re_lu_1``… (ReLU, and ReLU6 inside the hard
sigmoid ``relu6(x + 3) / 6`` of the squeeze-and-excitation) and ``activation``,
``activation_1``… (hard swish), numbered as a fresh Keras session numbers them. The last one
(after ``conv_1_bn``) is the Grad-CAM layer. BatchNormalization epsilon 1e-3, momentum 0.999.
Keras builds for an unknown input size unless ``input_shape`` is given, so the padding before
each stride-2 depthwise convolution is (k//2 − 1, k//2) by default (see ``correct_pad``).
"""

import os

from flax import nnx

from jaxvision.applications.common import (check_pooling, correct_pad, halve, keras_input_size,
                                           make_divisible, named)
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.mobilenet_v2 import bn
from jaxvision.applications.pretrained import keras_application
from jaxvision.layers import (Activation, Add, Conv2D, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D,
                              GlobalMaxPooling2D, Multiply, Rescaling, ZeroPadding2D)
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["MobileNetV3Large", "MobileNetV3Small", "decode_predictions", "mobilenet_v3_large", "mobilenet_v3_small",
           "preprocess_input"]

BASE_WEIGHT_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
# (expansion, filters before alpha, kernel (None: the model's), stride, squeeze-excite, activation (None: the model's)).
SMALL = ((1, 16, 3, 2, True, "relu"), (72 / 16, 24, 3, 2, False, "relu"), (88 / 24, 24, 3, 1, False, "relu"),
         (4, 40, None, 2, True, None), (6, 40, None, 1, True, None), (6, 40, None, 1, True, None),
         (3, 48, None, 1, True, None), (3, 48, None, 1, True, None), (6, 96, None, 2, True, None),
         (6, 96, None, 1, True, None), (6, 96, None, 1, True, None))
LARGE = ((1, 16, 3, 1, False, "relu"), (4, 24, 3, 2, False, "relu"), (3, 24, 3, 1, False, "relu"),
         (3, 40, None, 2, True, "relu"), (3, 40, None, 1, True, "relu"), (3, 40, None, 1, True, "relu"),
         (6, 80, 3, 2, False, None), (2.5, 80, 3, 1, False, None), (2.3, 80, 3, 1, False, None),
         (2.3, 80, 3, 1, False, None), (6, 112, 3, 1, True, None), (6, 112, 3, 1, True, None),
         (6, 160, None, 2, True, None), (6, 160, None, 1, True, None), (6, 160, None, 1, True, None))
VARIANTS = {"small": (SMALL, 1024), "large": (LARGE, 1280)}


def preprocess_input(x):
    """The identity, as Keras's ``mobilenet_v3.preprocess_input``: the model rescales [0, 255]
    pixels itself (its ``rescaling`` layer, with ``include_preprocessing=True``).

    Examples:
        >>> preprocess_input(255.0)
        255.0
    """
    return x


class _Activations:
    """Keras's unnamed activation layers of MobileNetV3, numbered per kind in call order."""

    def __init__(self, g: GraphBuilder):
        self.g = g

    def __call__(self, kind: str, x: str) -> str:
        if kind == "relu":
            return self.g(Activation("relu", name=self.g.auto_name("re_lu")), x)
        return self.g(Activation("hard_swish", name=self.g.auto_name("activation")), x)

    def hard_sigmoid(self, x: str) -> str:
        """``ReLU(6.0)(x + 3.0) * (1.0 / 6.0)``: two operations around a ``re_lu`` layer."""
        x = self.g.operation("add_scalar", x, constant=3.0)
        x = self.g(Activation("relu6", name=self.g.auto_name("re_lu")), x)
        return self.g.operation("multiply_scalar", x, constant=1.0 / 6.0)


class MobileNetV3(Functional):
    """The MobileNetV3 graph (``variant`` "small" or "large")."""

    def __init__(self, variant: str, alpha: float, minimalistic: bool, include_top: bool, pooling: str | None,
                 classes: int, dropout_rate: float, classifier_activation: str | None, include_preprocessing: bool,
                 input_shape, rngs: nnx.Rngs):
        check_pooling(f"MobileNetV3{variant.title()}", pooling)
        size = None if input_shape is None else keras_input_size(input_shape, include_top, 224)
        blocks, last_point = VARIANTS[variant]
        kernel, model_activation, se = (3, "relu", False) if minimalistic else (5, "hard_swish", True)
        g = GraphBuilder(self)
        act = _Activations(g)
        x = INPUT
        if include_preprocessing:
            x = g(Rescaling(1.0 / 127.5, offset=-1.0), x)
        x = g(Conv2D(3, 16, 3, strides=2, padding="same", use_bias=False, rngs=rngs, name="conv"), x)
        x = g(bn(16, "conv_bn", rngs), x)
        x = act(model_activation, x)
        size, channels = halve(size), 16
        for block_id, (expansion, filters, k, stride, use_se, activation) in enumerate(blocks):
            k, activation = k or kernel, activation or model_activation
            filters, use_se = make_divisible(filters * alpha), use_se and se
            shortcut, prefix, depth = x, "expanded_conv_", channels
            if block_id:
                prefix = f"expanded_conv_{block_id}_"
                depth = make_divisible(channels * expansion)
                x = g(Conv2D(channels, depth, 1, padding="same", use_bias=False, rngs=rngs, name=f"{prefix}expand"), x)
                x = g(bn(depth, f"{prefix}expand_bn", rngs), x)
                x = act(activation, x)
            if stride == 2:
                x = g(ZeroPadding2D(correct_pad(size, k), name=f"{prefix}depthwise_pad"), x)
                size = halve(size)
            x = g(DepthwiseConv2D(depth, k, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                                  rngs=rngs, name=f"{prefix}depthwise"), x)
            x = g(bn(depth, f"{prefix}depthwise_bn", rngs), x)
            x = act(activation, x)
            if use_se:
                inputs, squeeze = x, make_divisible(depth * 0.25)
                x = g(GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool"), x)
                x = g(Conv2D(depth, squeeze, 1, padding="same", rngs=rngs, name=f"{prefix}squeeze_excite_conv"), x)
                x = g(Activation("relu", name=f"{prefix}squeeze_excite_relu"), x)
                x = g(Conv2D(squeeze, depth, 1, padding="same", rngs=rngs, name=f"{prefix}squeeze_excite_conv_1"), x)
                x = g(Multiply(), [inputs, act.hard_sigmoid(x)], name=f"{prefix}squeeze_excite_mul")
            x = g(Conv2D(depth, filters, 1, padding="same", use_bias=False, rngs=rngs, name=f"{prefix}project"), x)
            x = g(bn(filters, f"{prefix}project_bn", rngs), x)
            if stride == 1 and channels == filters:
                x = g(Add(), [shortcut, x], name=f"{prefix}add")
            channels = filters
        last_conv = make_divisible(channels * 6)
        if alpha > 1.0:
            last_point = make_divisible(last_point * alpha)
        x = g(Conv2D(channels, last_conv, 1, padding="same", use_bias=False, rngs=rngs, name="conv_1"), x)
        x = g(bn(last_conv, "conv_1_bn", rngs), x)
        x = act(model_activation, x)
        if include_top:
            x = g(GlobalAveragePooling2D(keepdims=True), x)
            x = g(Conv2D(last_conv, last_point, 1, padding="same", rngs=rngs, name="conv_2"), x)
            x = act(model_activation, x)
            if dropout_rate > 0:
                x = g(Dropout(dropout_rate, rngs=rngs), x)
            x = g(Conv2D(last_point, classes, 1, padding="same", rngs=rngs, name="logits"), x)
            x = g(Flatten(), x)
            x = g(Activation(classifier_activation, name="predictions"), x)
        elif pooling == "avg":
            x = g(GlobalAveragePooling2D(name="avg_pool"), x)
        elif pooling == "max":
            x = g(GlobalMaxPooling2D(name="max_pool"), x)
        g.finish(x)


def _builder(variant: str):
    def builder(alpha: float = 1.0, minimalistic: bool = False, include_top: bool = True, pooling: str | None = None,
                classes: int = 1000, dropout_rate: float = 0.2, classifier_activation: str | None = "softmax",
                include_preprocessing: bool = True, input_shape: list[int] | None = None,
                seed: int = 0) -> Functional:
        return MobileNetV3(variant, alpha, minimalistic, include_top, pooling, classes, dropout_rate,
                                  classifier_activation, include_preprocessing, input_shape, model_rngs(seed))

    return register(named(builder, f"mobilenet_v3_{variant}", __name__,
                          f"MobileNetV3{variant.title()} with random weights (what checkpoints rebuild)."))


mobilenet_v3_small = _builder("small")
mobilenet_v3_large = _builder("large")


def _constructor(variant: str, input_shape, alpha, minimalistic, include_top, weights, classes, pooling, dropout_rate,
                 classifier_activation, include_preprocessing, seed, manifest) -> Functional:
    family = f"MobileNetV3{variant.title()}"
    if weights == "imagenet" and (alpha not in (0.75, 1.0) or (minimalistic and alpha != 1.0)):
        raise ValueError(f"{family}: ImageNet weights exist for alpha 0.75 and 1.0 (1.0 only when minimalistic), "
                         f"got alpha={alpha}, minimalistic={minimalistic}")
    name = f"{variant}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    keras_file = f"weights_mobilenet_v3_{name}{'' if include_top else '_no_top_v2'}.h5"
    return keras_application(family, f"mobilenet_v3_{variant}", weights, include_top=include_top, classes=classes,
                             pooling=pooling, keras_file=keras_file, url=BASE_WEIGHT_URL + keras_file,
                             manifest=manifest, alpha=alpha, minimalistic=minimalistic, dropout_rate=dropout_rate,
                             classifier_activation=classifier_activation,
                             include_preprocessing=include_preprocessing,
                             input_shape=None if input_shape is None else list(input_shape), seed=seed)


def MobileNetV3Small(input_shape: tuple[int, int, int] | None = None, alpha: float = 1.0,  # noqa: N802
                     minimalistic: bool = False, include_top: bool = True, weights: str | os.PathLike | None = None,
                     classes: int = 1000, pooling: str | None = None, dropout_rate: float = 0.2,
                     classifier_activation: str | None = "softmax", include_preprocessing: bool = True,
                     seed: int = 0, manifest: str | os.PathLike | dict | None = None) -> Functional:
    """``keras.applications.MobileNetV3Small``: the same arguments, layer names and weight files.

    Args:
      input_shape: optional ``(height, width, 3)`` Keras would build for (sets the padding
        before stride-2 depthwise convolutions; ``None``, Keras's default, means unknown).
      alpha, minimalistic, include_top, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing: as in Keras (``minimalistic``: 3×3 kernels, ReLU, no
        squeeze-and-excitation).
      weights: ``None`` (random, the default here), ``"imagenet"`` (Keras's
        ``weights_mobilenet_v3_small_224_<alpha>_float[_no_top_v2].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras weights file.
      seed: for the random initial weights and dropout.
      manifest: a weights manifest the loaded file must match.

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: MobileNetV3Small(include_top=False))
        >>> model.layer_names[-1], model.layer_shapes((1, 224, 224, 3))[model.layer_names[-1]]
        ('activation_17', (1, 7, 7, 576))
    """
    return _constructor("small", input_shape, alpha, minimalistic, include_top, weights, classes, pooling,
                        dropout_rate, classifier_activation, include_preprocessing, seed, manifest)


def MobileNetV3Large(input_shape: tuple[int, int, int] | None = None, alpha: float = 1.0,  # noqa: N802
                     minimalistic: bool = False, include_top: bool = True, weights: str | os.PathLike | None = None,
                     classes: int = 1000, pooling: str | None = None, dropout_rate: float = 0.2,
                     classifier_activation: str | None = "softmax", include_preprocessing: bool = True,
                     seed: int = 0, manifest: str | os.PathLike | dict | None = None) -> Functional:
    """``keras.applications.MobileNetV3Large``: arguments as ``MobileNetV3Small``.

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: MobileNetV3Large(minimalistic=True, classes=5))
        >>> model.layer_shapes((1, 64, 64, 3))["predictions"]
        (1, 5)
    """
    return _constructor("large", input_shape, alpha, minimalistic, include_top, weights, classes, pooling,
                        dropout_rate, classifier_activation, include_preprocessing, seed, manifest)
