"""Inception-ResNet v2 (Szegedy et al., 2016) exactly as ``keras.applications.InceptionResNetV2`` builds it.

Layer names are Keras's where Keras names them: ``mixed_5b``, ``mixed_6a``, ``mixed_7a``; per
residual block ``block35_{i}``/``block17_{i}``/``block8_{i}``: ``_mixed`` (the concatenated
branches), ``_conv`` (the 1×1 projection, with bias) and ``_ac`` (ReLU; block8_10 has none);
``conv_7b``, ``conv_7b_bn``, ``conv_7b_ac`` (8 × 8 × 1536 at 299², the Grad-CAM layer); then
``avg_pool`` and ``predictions``. The other layers are auto-named and get the names a fresh
Keras session gives them: the branch units ``conv2d``, ``batch_normalization``,
``activation`` … (``conv2d_202`` the last), the poolings ``max_pooling2d``… and
``average_pooling2d``, and the scaled residual sums ``custom_scale_layer`` …
``custom_scale_layer_39`` (Keras's ``CustomScaleLayer``, here
``ScaledAdd``: ``x + branch * scale``, scale 0.17, 0.1, 0.2 and 1.0
for block8_10). BatchNormalization has no ``gamma`` and epsilon 1e-3. Inputs are at least
75 × 75, in Keras's ``"tf"`` preprocessing ([-1, 1]).
"""

import os

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.pretrained import application
from jaxvision.layers import (Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, MaxPooling2D,
                              ScaledAdd)
from jaxvision.models.convnets import model_rngs
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import register

__all__ = ["InceptionResNetV2", "InceptionResNetV2Net", "decode_predictions", "inception_resnet_v2",
           "preprocess_input"]

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"
# (block type, number of blocks, residual scale) of the three repeated stages.
STAGES = (("block35", 10, 0.17), ("block17", 20, 0.1), ("block8", 10, 0.2))


def preprocess_input(x):
    """Keras's ``inception_resnet_v2.preprocess_input``: mode ``"tf"``, ``x / 127.5 - 1``.

    Examples:
        >>> import numpy as np
        >>> preprocess_input(np.array([0.0, 255.0])).tolist()
        [-1.0, 1.0]
    """
    return _preprocess(x, mode="tf")


class InceptionResNetV2Net(Functional):
    """The Inception-ResNet v2 graph; build it with ``InceptionResNetV2`` or
    ``build_model("inception_resnet_v2")``.

    Args:
      include_top: end with ``avg_pool`` and the ``classes``-way ``predictions`` Dense.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      classifier_activation: of ``predictions`` (``None`` gives logits).
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    preprocessing_mode = "tf"  # of preprocess_input, for exported models

    def __init__(self, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: str | None = "softmax", *, rngs: nnx.Rngs):
        check_pooling("InceptionResNetV2", pooling)
        self.include_top, self.pooling, self.classes = include_top, pooling, classes
        graph = GraphBuilder(self)
        width = {graph.input: 3}  # output channels of every layer

        def conv2d_bn(x: str, filters: int, kernel: int | tuple[int, int], strides: int = 1, padding: str = "same",
                      activation: str | None = "relu", use_bias: bool = False, name: str | None = None) -> str:
            """Keras's ``conv2d_bn``: convolution, BatchNormalization without scale unless the
            convolution has a bias, then the activation; named ``name``, ``name_bn``, ``name_ac``."""
            y = graph(Conv2D(width[x], filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
                             rngs=rngs), x, name=name)
            if not use_bias:
                y = graph(BatchNormalization(filters, scale=False, rngs=rngs), y, name=name and f"{name}_bn")
            if activation is not None:
                y = graph(Activation(activation), y, name=name and f"{name}_ac")
            width[y] = filters
            return y

        def pool(layer: nnx.Module, x: str) -> str:
            y = graph(layer, x)
            width[y] = width[x]
            return y

        def concatenate(branches: list[str], name: str) -> str:
            x = graph(Concatenate(), branches, name=name)
            width[x] = sum(width[b] for b in branches)
            return x

        def residual_block(x: str, block_type: str, index: int, scale: float, activation: str | None) -> str:
            """Keras's ``inception_resnet_block``."""
            if block_type == "block35":
                branches = [conv2d_bn(x, 32, 1), conv2d_bn(conv2d_bn(x, 32, 1), 32, 3),
                            conv2d_bn(conv2d_bn(conv2d_bn(x, 32, 1), 48, 3), 64, 3)]
            elif block_type == "block17":
                branches = [conv2d_bn(x, 192, 1), conv2d_bn(conv2d_bn(conv2d_bn(x, 128, 1), 160, (1, 7)), 192, (7, 1))]
            else:
                branches = [conv2d_bn(x, 192, 1), conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1), 224, (1, 3)), 256, (3, 1))]
            name = f"{block_type}_{index}"
            mixed = concatenate(branches, f"{name}_mixed")
            up = conv2d_bn(mixed, width[x], 1, activation=None, use_bias=True, name=f"{name}_conv")
            y = graph(ScaledAdd(scale), [x, up], name=graph.auto_name("custom_scale_layer"))
            if activation is not None:
                y = graph(Activation(activation), y, name=f"{name}_ac")
            width[y] = width[x]
            return y

        x = conv2d_bn(graph.input, 32, 3, strides=2, padding="valid")  # stem: 35 × 35 × 192 at 299²
        x = conv2d_bn(x, 32, 3, padding="valid")
        x = conv2d_bn(x, 64, 3)
        x = pool(MaxPooling2D(3, strides=2), x)
        x = conv2d_bn(x, 80, 1, padding="valid")
        x = conv2d_bn(x, 192, 3, padding="valid")
        x = pool(MaxPooling2D(3, strides=2), x)
        branches = [conv2d_bn(x, 96, 1), conv2d_bn(conv2d_bn(x, 48, 1), 64, 5),
                    conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1), 96, 3), 96, 3)]
        branches.append(conv2d_bn(pool(AveragePooling2D(3, strides=1, padding="same"), x), 64, 1))
        x = concatenate(branches, "mixed_5b")  # 35 × 35 × 320
        for block_type, count, scale in STAGES:
            if block_type == "block17":  # reduction A: 17 × 17 × 1088
                branches = [conv2d_bn(x, 384, 3, strides=2, padding="valid"),
                            conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid"),
                            pool(MaxPooling2D(3, strides=2), x)]
                x = concatenate(branches, "mixed_6a")
            elif block_type == "block8":  # reduction B: 8 × 8 × 2080
                branches = [conv2d_bn(conv2d_bn(x, 256, 1), 384, 3, strides=2, padding="valid"),
                            conv2d_bn(conv2d_bn(x, 256, 1), 288, 3, strides=2, padding="valid"),
                            conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid"),
                            pool(MaxPooling2D(3, strides=2), x)]
                x = concatenate(branches, "mixed_7a")
            for index in range(1, count + 1):
                last = block_type == "block8" and index == count  # block8_10: scale 1, no activation
                x = residual_block(x, block_type, index, 1.0 if last else scale, None if last else "relu")
        x = conv2d_bn(x, 1536, 1, name="conv_7b")
        x = add_top(graph, x, width[x], include_top=include_top, pooling=pooling, classes=classes,
                    classifier_activation=classifier_activation, rngs=rngs, named_pooling=False)
        graph.finish(x)


@register
def inception_resnet_v2(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                        classifier_activation: str | None = "softmax", seed: int = 0) -> InceptionResNetV2Net:
    """Inception-ResNet v2 with random weights (what checkpoints rebuild before restoring theirs)."""
    return InceptionResNetV2Net(include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


def InceptionResNetV2(include_top: bool = True, weights: str | os.PathLike | None = None,
                      input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                      classes: int = 1000, classifier_activation: str | None = "softmax", seed: int = 0,
                      manifest: str | os.PathLike | dict | None = None) -> InceptionResNetV2Net:
    """``keras.applications.InceptionResNetV2``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as ``InceptionResNetV2Net``.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``inception_resnet_v2_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras ``.h5`` /
        ``.weights.h5`` / ``.keras`` file.
      input_shape: optional ``(height, width, 3)``, each side at least 75 (checked as Keras does).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are scaled by ``preprocess_input`` (mode "tf").

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: InceptionResNetV2(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 299, 299, 3))["conv_7b_ac"]
        (1, 8, 8, 1536)
    """
    return application("InceptionResNetV2", "inception_resnet_v2", weights=weights, include_top=include_top,
                       classes=classes, input_shape=input_shape, min_size=75, default_size=299,
                       url_folder=WEIGHTS_URL, weights_name="inception_resnet_v2", manifest=manifest, pooling=pooling,
                       classifier_activation=classifier_activation, seed=seed)
