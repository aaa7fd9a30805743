"""MobileNetV2 (Sandler et al., 2018) exactly as ``keras.applications.MobileNetV2`` builds it.

Layer names are Keras's: ``Conv1``, ``bn_Conv1``, ``Conv1_relu``; the first inverted
residual block ``expanded_conv_depthwise`` … ``expanded_conv_project_BN``; blocks *i* = 1…16
``block_i_expand``, ``_expand_BN``, ``_expand_relu``, ``block_i_pad`` (stride 2),
``_depthwise``, ``_depthwise_BN``, ``_depthwise_relu``, ``_project``, ``_project_BN``,
``block_i_add``; then ``Conv_1``, ``Conv_1_bn``, ``out_relu`` (the Grad-CAM layer) and the
top ``global_average_pooling2d``, ``predictions``. ReLU6 throughout; BatchNormalization
epsilon 1e-3, momentum 0.999. Inputs are scaled to [-1, 1] by ``preprocess_input``
outside the model, as in Keras.
"""

import os

from flax import nnx

from jaxvision.applications.common import (add_top, check_pooling, correct_pad, halve, keras_input_size,
                                           make_divisible)
from jaxvision.applications.imagenet_utils import decode_predictions, preprocess_input
from jaxvision.applications.pretrained import keras_application
from jaxvision.layers import Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, ZeroPadding2D
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["MobileNetV2", "decode_predictions", "mobilenet_v2", "preprocess_input"]

BASE_WEIGHT_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
# (filters before alpha, stride, expansion) of blocks 0..16.
BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
          (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
          (320, 1, 6))



def bn(channels: int, name: str, rngs: nnx.Rngs) -> BatchNormalization:
    return BatchNormalization(channels, momentum=0.999, epsilon=1e-3, rngs=rngs, name=name)


class MobileNetV2Net(Functional):
    """The MobileNetV2 graph; build it with ``MobileNetV2`` (weights) or ``build_model("mobilenet_v2")``."""

    preprocessing_mode = "tf"  # of preprocess_input, for exported models

    def __init__(self, alpha: float, include_top: bool, pooling: str | None, classes: int,
                 classifier_activation: str | None, input_shape, rngs: nnx.Rngs):
        check_pooling("MobileNetV2", pooling)
        size = keras_input_size(input_shape, include_top, 224)
        g = GraphBuilder(self)
        channels = make_divisible(32 * alpha, 8)
        x = g(Conv2D(3, channels, 3, strides=2, padding="same", use_bias=False, rngs=rngs, name="Conv1"), INPUT)
        x = g(bn(channels, "bn_Conv1", rngs), x)
        x = g(Activation("relu6", name="Conv1_relu"), x)
        size = halve(size)
        for block_id, (filters, stride, expansion) in enumerate(BLOCKS):
            inputs = x
            out = make_divisible(int(filters * alpha), 8)
            prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
            depth = channels
            if block_id:
                depth = expansion * channels
                x = g(Conv2D(channels, depth, 1, padding="same", use_bias=False, rngs=rngs, name=f"{prefix}expand"), x)
                x = g(bn(depth, f"{prefix}expand_BN", rngs), x)
                x = g(Activation("relu6", name=f"{prefix}expand_relu"), x)
            if stride == 2:
                x = g(ZeroPadding2D(correct_pad(size, 3), name=f"{prefix}pad"), x)
                size = halve(size)
            x = g(DepthwiseConv2D(depth, 3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                                  rngs=rngs, name=f"{prefix}depthwise"), x)
            x = g(bn(depth, f"{prefix}depthwise_BN", rngs), x)
            x = g(Activation("relu6", name=f"{prefix}depthwise_relu"), x)
            x = g(Conv2D(depth, out, 1, padding="same", use_bias=False, rngs=rngs, name=f"{prefix}project"), x)
            x = g(bn(out, f"{prefix}project_BN", rngs), x)
            if channels == out and stride == 1:
                x = g(Add(), [inputs, x], name=f"{prefix}add")
            channels = out
        last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
        x = g(Conv2D(channels, last, 1, use_bias=False, rngs=rngs, name="Conv_1"), x)
        x = g(bn(last, "Conv_1_bn", rngs), x)
        x = g(Activation("relu6", name="out_relu"), x)
        g.finish(add_top(g, x, last, include_top=include_top, pooling=pooling, classes=classes,
                         classifier_activation=classifier_activation, rngs=rngs, named_pooling=False,
                         top_pool_name=None))


@register
def mobilenet_v2(alpha: float = 1.0, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: str | None = "softmax", input_shape: list[int] | None = None,
                 seed: int = 0) -> Functional:
    """MobileNetV2 with random weights (what checkpoints rebuild before restoring theirs).

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: mobilenet_v2(alpha=0.35, include_top=False))  # shapes only
        >>> model.layer_shapes((1, 96, 96, 3))["out_relu"]
        (1, 3, 3, 1280)
    """
    return MobileNetV2Net(alpha, include_top, pooling, classes, classifier_activation, input_shape,
                              model_rngs(seed))


def MobileNetV2(input_shape: tuple[int, int, int] | None = None, alpha: float = 1.0, include_top: bool = True,  # noqa: N802
                weights: str | os.PathLike | None = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", seed: int = 0,
                manifest: str | os.PathLike | dict | None = None) -> Functional:
    """``keras.applications.MobileNetV2``: the same arguments, layer names and weight files.

    Args:
      input_shape: optional ``(height, width, 3)``: the size Keras would build for, which sets
        the padding before the stride-2 depthwise convolutions (see
        [correct_pad][jaxvision.applications.common.correct_pad]) and picks the ImageNet file.
      alpha: width multiplier (ImageNet weights for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4).
      include_top, pooling, classes, classifier_activation: as in Keras.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<size>[_no_top].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras weights file.
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: MobileNetV2(alpha=0.5, classes=10))
        >>> model.layer_names[-3:], model.layer_shapes((2, 224, 224, 3))["predictions"]
        (('out_relu', 'global_average_pooling2d', 'predictions'), (2, 10))
    """
    rows = 224
    if weights == "imagenet":
        if alpha not in IMAGENET_ALPHAS:
            raise ValueError(f"MobileNetV2: ImageNet weights exist for alpha in {IMAGENET_ALPHAS}, got {alpha}")
        if input_shape is not None and input_shape[0] == input_shape[1] and input_shape[0] in IMAGENET_SIZES:
            rows = input_shape[0]
    keras_file = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{'' if include_top else '_no_top'}.h5"
    return keras_application("MobileNetV2", "mobilenet_v2", weights, include_top=include_top, classes=classes,
                             pooling=pooling, keras_file=keras_file, url=BASE_WEIGHT_URL + keras_file,
                             manifest=manifest, alpha=alpha, classifier_activation=classifier_activation,
                             input_shape=None if input_shape is None else list(input_shape), seed=seed)
