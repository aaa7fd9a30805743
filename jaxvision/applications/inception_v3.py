"""Inception v3 (Szegedy et al., 2015) exactly as ``keras.applications.InceptionV3`` builds it.

Keras names only the eleven concatenations, ``mixed0`` … ``mixed10`` (``mixed10``, 8 × 8 × 2048
at 299², is the Grad-CAM layer), ``mixed9_0``/``mixed9_1`` and the top (``avg_pool``,
``predictions``); every other layer is auto-named and gets the name a fresh Keras session
gives it: the 94 convolution-BN-ReLU units are ``conv2d``, ``batch_normalization``,
``activation`` … ``conv2d_93``, ``batch_normalization_93``, ``activation_93`` (numbered in the
order Keras's source creates them, which this file follows), the poolings
``max_pooling2d``… and ``average_pooling2d``…, the inner concatenations of mixed9/10
``concatenate`` and ``concatenate_1``. BatchNormalization has no ``gamma`` (``scale=False``)
and epsilon 1e-3. Inputs are at least 75 × 75, in Keras's ``"tf"`` preprocessing ([-1, 1]).
"""

import os

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.pretrained import application
from jaxvision.layers import Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, MaxPooling2D
from jaxvision.models.convnets import model_rngs
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import register

__all__ = ["InceptionV3", "InceptionV3Net", "decode_predictions", "inception_v3", "preprocess_input"]

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"


def preprocess_input(x):
    """Keras's ``inception_v3.preprocess_input``: mode ``"tf"``, ``x / 127.5 - 1``.

    Examples:
        >>> import numpy as np
        >>> preprocess_input(np.array([0.0, 255.0])).tolist()
        [-1.0, 1.0]
    """
    return _preprocess(x, mode="tf")


class InceptionV3Net(Functional):
    """The Inception v3 graph; build it with ``InceptionV3`` or ``build_model("inception_v3")``.

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
        check_pooling("InceptionV3", pooling)
        self.include_top, self.pooling, self.classes = include_top, pooling, classes
        graph = GraphBuilder(self)
        width = {graph.input: 3}  # output channels of every layer

        def conv2d_bn(x: str, filters: int, rows: int, cols: int, strides: int = 1, padding: str = "same") -> str:
            """Keras's ``conv2d_bn``: convolution without bias, BatchNormalization without scale, ReLU."""
            x = graph(Conv2D(width[x], filters, (rows, cols), strides=strides, padding=padding, use_bias=False,
                             rngs=rngs), x)
            x = graph(BatchNormalization(filters, scale=False, rngs=rngs), x)
            x = graph(Activation("relu"), x)
            width[x] = filters
            return x

        def pool(layer: nnx.Module, x: str) -> str:
            y = graph(layer, x)
            width[y] = width[x]
            return y

        def concatenate(branches: list[str], name: str | None = None) -> str:
            x = graph(Concatenate(), branches, name=name)
            width[x] = sum(width[b] for b in branches)
            return x

        def average_pool(x: str) -> str:
            return pool(AveragePooling2D(3, strides=1, padding="same"), x)

        x = conv2d_bn(graph.input, 32, 3, 3, strides=2, padding="valid")
        x = conv2d_bn(x, 32, 3, 3, padding="valid")
        x = conv2d_bn(x, 64, 3, 3)
        x = pool(MaxPooling2D(3, strides=2), x)
        x = conv2d_bn(x, 80, 1, 1, padding="valid")
        x = conv2d_bn(x, 192, 3, 3, padding="valid")
        x = pool(MaxPooling2D(3, strides=2), x)
        for i, pool_filters in enumerate((32, 64, 64)):  # mixed 0, 1, 2: 35 × 35 × 256, 288, 288
            branch1x1 = conv2d_bn(x, 64, 1, 1)
            branch5x5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
            branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
            branch_pool = conv2d_bn(average_pool(x), pool_filters, 1, 1)
            x = concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], f"mixed{i}")
        branch3x3 = conv2d_bn(x, 384, 3, 3, strides=2, padding="valid")  # mixed 3: 17 × 17 × 768
        branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=2, padding="valid")
        branch_pool = pool(MaxPooling2D(3, strides=2), x)
        x = concatenate([branch3x3, branch3x3dbl, branch_pool], "mixed3")
        for i, mid in zip(range(4, 8), (128, 160, 160, 192)):  # mixed 4…7: 17 × 17 × 768
            branch1x1 = conv2d_bn(x, 192, 1, 1)
            branch7x7 = conv2d_bn(conv2d_bn(conv2d_bn(x, mid, 1, 1), mid, 1, 7), 192, 7, 1)
            branch7x7dbl = conv2d_bn(x, mid, 1, 1)
            for rows, cols, filters in ((7, 1, mid), (1, 7, mid), (7, 1, mid), (1, 7, 192)):
                branch7x7dbl = conv2d_bn(branch7x7dbl, filters, rows, cols)
            branch_pool = conv2d_bn(average_pool(x), 192, 1, 1)
            x = concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], f"mixed{i}")
        branch3x3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=2, padding="valid")  # mixed 8: 8 × 8 × 1280
        branch7x7x3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
        branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, strides=2, padding="valid")
        branch_pool = pool(MaxPooling2D(3, strides=2), x)
        x = concatenate([branch3x3, branch7x7x3, branch_pool], "mixed8")
        for i in range(2):  # mixed 9, 10: 8 × 8 × 2048
            branch1x1 = conv2d_bn(x, 320, 1, 1)
            branch3x3 = conv2d_bn(x, 384, 1, 1)
            branch3x3 = concatenate([conv2d_bn(branch3x3, 384, 1, 3), conv2d_bn(branch3x3, 384, 3, 1)], f"mixed9_{i}")
            branch3x3dbl = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
            branch3x3dbl = concatenate([conv2d_bn(branch3x3dbl, 384, 1, 3), conv2d_bn(branch3x3dbl, 384, 3, 1)])
            branch_pool = conv2d_bn(average_pool(x), 192, 1, 1)
            x = concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], f"mixed{9 + i}")
        x = add_top(graph, x, width[x], include_top=include_top, pooling=pooling, classes=classes,
                    classifier_activation=classifier_activation, rngs=rngs, named_pooling=False)
        graph.finish(x)


@register
def inception_v3(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: str | None = "softmax", seed: int = 0) -> InceptionV3Net:
    """Inception v3 with random weights (what checkpoints rebuild before restoring theirs)."""
    return InceptionV3Net(include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


def InceptionV3(include_top: bool = True, weights: str | os.PathLike | None = None,
                input_shape: tuple[int, int, int] | None = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", seed: int = 0,
                manifest: str | os.PathLike | dict | None = None) -> InceptionV3Net:
    """``keras.applications.InceptionV3``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as ``InceptionV3Net``.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras ``.h5`` /
        ``.weights.h5`` / ``.keras`` file.
      input_shape: optional ``(height, width, 3)``, each side at least 75 (checked as Keras does).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are scaled by ``preprocess_input`` (mode "tf").

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: InceptionV3(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 299, 299, 3))["mixed10"]
        (1, 8, 8, 2048)
    """
    return application("InceptionV3", "inception_v3", weights=weights, include_top=include_top, classes=classes,
                       input_shape=input_shape, min_size=75, default_size=299, url_folder=WEIGHTS_URL,
                       weights_name="inception_v3", manifest=manifest, pooling=pooling,
                       classifier_activation=classifier_activation, seed=seed)
