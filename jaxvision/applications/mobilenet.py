"""MobileNet v1 (Howard et al., 2017) exactly as ``keras.applications.MobileNet`` builds it.

Layer names are the public contract (they are what weight files, ``intermediates`` and
Grad-CAM use): ``conv1``, ``conv1_bn``, ``conv1_relu``; per block *i* = 1…13 ``conv_pad_i``
(stride-2 blocks 2, 4, 6, 12 only), ``conv_dw_i``, ``conv_dw_i_bn``, ``conv_dw_i_relu``,
``conv_pw_i``, ``conv_pw_i_bn``, ``conv_pw_i_relu``; with the top ``global_average_pooling2d``,
``dropout``, ``conv_preds``, ``reshape_2``, ``predictions``. Stride-2 depthwise convolutions
pad (0, 1) explicitly and run "valid", as Keras does (which differs from "same" on odd sizes).
Activations are ReLU6 and every BatchNormalization uses epsilon 1e-3.
"""

import os
import warnings

from flax import nnx

from jaxvision.applications.common import check_pooling, check_weights_arguments
from jaxvision.applications.pretrained import build, check_weights_path, load_weights
from jaxvision.layers import (Activation, BatchNormalization, Conv2D, DepthwiseConv2D, Dropout,
                              GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape, ZeroPadding2D)
from jaxvision.models.base import Sequential
from jaxvision.models.convnets import model_rngs
from jaxvision.models.registry import register

BASE_WEIGHT_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
IMAGENET_ALPHAS = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}
IMAGENET_SIZES = (128, 160, 192, 224)
# (pointwise filters before alpha, depthwise stride) of blocks 1..13.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
          (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(Sequential):
    """The MobileNet v1 graph; build it with [MobileNet][jaxvision.applications.MobileNet]
    (weights) or ``build_model("mobilenet")``.

    Args:
      alpha: width multiplier; every layer has ``int(filters * alpha)`` filters.
      depth_multiplier: of the depthwise convolutions.
      include_top: end with the 1000-class (``classes``) classifier.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      dropout: rate before the classifier.
      classifier_activation: of ``predictions`` (``None`` gives logits).
      rngs: ``nnx.Rngs`` with ``params`` and ``dropout`` streams.
    """

    keras_class = "Functional"  # keras.applications.MobileNet returns a functional model
    preprocessing_mode = "tf"  # keras.applications.mobilenet.preprocess_input

    def __init__(self, alpha: float = 1.0, depth_multiplier: int = 1, include_top: bool = True,
                 pooling: str | None = None, classes: int = 1000, dropout: float = 1e-3,
                 classifier_activation: str | None = "softmax", *, rngs: nnx.Rngs):
        check_pooling("MobileNet", pooling)
        self.alpha, self.depth_multiplier, self.include_top = alpha, depth_multiplier, include_top
        self.pooling, self.classes = pooling, classes
        width = int(32 * alpha)
        layers = [("conv1", Conv2D(3, width, 3, strides=2, padding="same", use_bias=False, rngs=rngs, name="conv1")),
                  ("conv1_bn", BatchNormalization(width, rngs=rngs, name="conv1_bn")),
                  ("conv1_relu", Activation("relu6", name="conv1_relu"))]
        channels = width
        for i, (filters, stride) in enumerate(BLOCKS, start=1):
            filters = int(filters * alpha)
            if stride == 2:
                layers.append((f"conv_pad_{i}", ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{i}")))
            depth = channels * depth_multiplier
            layers += [
                (f"conv_dw_{i}", DepthwiseConv2D(channels, 3, strides=stride, padding="valid" if stride == 2 else "same",
                                                 depth_multiplier=depth_multiplier, use_bias=False, rngs=rngs,
                                                 name=f"conv_dw_{i}")),
                (f"conv_dw_{i}_bn", BatchNormalization(depth, rngs=rngs, name=f"conv_dw_{i}_bn")),
                (f"conv_dw_{i}_relu", Activation("relu6", name=f"conv_dw_{i}_relu")),
                (f"conv_pw_{i}", Conv2D(depth, filters, 1, padding="same", use_bias=False, rngs=rngs, name=f"conv_pw_{i}")),
                (f"conv_pw_{i}_bn", BatchNormalization(filters, rngs=rngs, name=f"conv_pw_{i}_bn")),
                (f"conv_pw_{i}_relu", Activation("relu6", name=f"conv_pw_{i}_relu")),
            ]
            channels = filters
        if include_top:
            layers += [
                ("global_average_pooling2d", GlobalAveragePooling2D(keepdims=True, name="global_average_pooling2d")),
                ("dropout", Dropout(dropout, rngs=rngs, name="dropout")),
                ("conv_preds", Conv2D(channels, classes, 1, padding="same", rngs=rngs, name="conv_preds")),
                ("reshape_2", Reshape((classes,), name="reshape_2")),
                ("predictions", Activation(classifier_activation, name="predictions")),
            ]
        elif pooling == "avg":
            layers.append(("global_average_pooling2d", GlobalAveragePooling2D(name="global_average_pooling2d")))
        elif pooling == "max":
            layers.append(("global_max_pooling2d", GlobalMaxPooling2D(name="global_max_pooling2d")))
        super().__init__(layers)


@register
def mobilenet(alpha: float = 1.0, depth_multiplier: int = 1, include_top: bool = True, pooling: str | None = None,
              classes: int = 1000, dropout: float = 1e-3, classifier_activation: str | None = "softmax",
              seed: int = 0, manifest: str | os.PathLike | dict | None = None) -> MobileNetV1:
    """MobileNet v1 with random weights (what checkpoints rebuild before restoring theirs).

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: mobilenet(alpha=0.25, include_top=False))  # shapes only
        >>> model.layer_shapes((1, 224, 224, 3))["conv_pw_13_relu"]
        (1, 7, 7, 256)
    """
    return MobileNetV1(alpha, depth_multiplier, include_top, pooling, classes, dropout, classifier_activation,
                       rngs=model_rngs(seed))


def MobileNet(input_shape: tuple[int, int, int] | None = None, alpha: float = 1.0, depth_multiplier: int = 1,
              dropout: float = 1e-3, include_top: bool = True, weights: str | os.PathLike | None = None,
              pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
              seed: int = 0, manifest: str | os.PathLike | dict | None = None) -> MobileNetV1:
    """``keras.applications.MobileNet``: the same arguments, layer names and weights.

    Args:
      input_shape: optional ``(height, width, 3)``; the model takes any size ≥ 32, and this
        only picks the ImageNet file (Keras has them for square 128, 160, 192 and 224).
      alpha, depth_multiplier, dropout, include_top, pooling, classes, classifier_activation:
        as [MobileNetV1][jaxvision.applications.MobileNetV1].
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``mobilenet_<alpha>_<size>_tf[_no_top].h5`` or the TF.js copy under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras weights file.
      seed: for the random initial weights and dropout.
      manifest: a weights manifest ([jaxvision.weights.make_manifest][jaxvision.weights.make_manifest]) the loaded file
        must match: its sha256, every tensor and a golden input → output pair.

    Examples:
        >>> import jax.numpy as jnp
        >>> model = MobileNet(alpha=0.75, weights="imagenet")  # offline: the TF.js copy
        >>> model(jnp.zeros((1, 224, 224, 3))).shape
        (1, 1000)
    """
    if input_shape is not None:
        if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
            raise ValueError(f"MobileNet: input_shape must be (height, width, 3) with height and width >= 32, "
                             f"got {input_shape!r}")
    rows = 224
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError(f"MobileNet: ImageNet weights need depth_multiplier=1, got {depth_multiplier}")
        if alpha not in IMAGENET_ALPHAS:
            raise ValueError(f"MobileNet: ImageNet weights exist for alpha in {sorted(IMAGENET_ALPHAS)}, got {alpha}")
        if input_shape is not None and input_shape[0] == input_shape[1] and input_shape[0] in IMAGENET_SIZES:
            rows = input_shape[0]
        elif input_shape is not None:
            warnings.warn(f"MobileNet: input_shape {tuple(input_shape)} is non-square or not in {IMAGENET_SIZES}; "
                          "loading the weights for (224, 224), as Keras does", stacklevel=2)
    # Not keras_application: the ImageNet file depends on the built model (and serves the U-Net's encoder).
    check_weights_arguments("MobileNet", weights, include_top, classes, pooling)
    check_weights_path(weights)
    kwargs = dict(alpha=alpha, depth_multiplier=depth_multiplier, include_top=include_top, pooling=pooling,
                  classes=classes, dropout=dropout, classifier_activation=classifier_activation, seed=seed)
    model = build("mobilenet", weights, **kwargs)
    load_mobilenet_weights(model, weights, rows=rows, manifest=manifest)
    return model


def load_mobilenet_weights(model: MobileNetV1, weights: str | os.PathLike | None, *, rows: int = 224,
                           manifest: str | os.PathLike | dict | None = None) -> None:
    """Load ``weights`` (as `MobileNet`'s argument) into ``model``, also when it is the
    encoder inside a larger model; ``rows`` picks the ImageNet file's input size."""
    if weights is None:
        return
    alpha, suffix = model.alpha, "" if model.include_top else "_no_top"
    keras_file = f"mobilenet_{IMAGENET_ALPHAS.get(alpha, alpha)}_{rows}_tf{suffix}.h5"
    alternatives = [f"mobilenet_v1_{alpha:.2f}_{rows}_tfjs"]
    if not model.include_top:
        alternatives.insert(0, f"mobilenet_{IMAGENET_ALPHAS.get(alpha, alpha)}_{rows}_tf.h5")
    load_weights(model, weights, keras_file=keras_file, url=BASE_WEIGHT_URL + keras_file, sha256=None,
                 alternatives=alternatives, head=("conv_preds",), manifest=manifest)
