"""VGG16 and VGG19 (Simonyan and Zisserman, 2014) exactly as ``keras.applications.vgg16`` and
``vgg19`` build them.

Layer names are Keras's: ``block{b}_conv{c}`` (3×3, "same", ReLU in the convolution) and
``block{b}_pool`` (2×2 max pooling) for the five blocks, then ``flatten``, ``fc1``, ``fc2``
(4096 units, ReLU) and ``predictions``; without the top, ``pooling`` adds an auto-named
``global_average_pooling2d`` or ``global_max_pooling2d``. The classifier flattens the last
pooled map, so its size fixes ``fc1``'s input: ``input_shape`` matters with the top (Keras's
ImageNet classifier needs 224 × 224). The Grad-CAM layer is ``block5_conv3`` (14 × 14 × 512 at
224², before the last pooling). Inputs are at least 32 × 32, in Keras's ``"caffe"``
preprocessing (``preprocess_input``: BGR, minus the ImageNet mean).
"""

import os
from collections.abc import Sequence

from flax import nnx

from jaxvision.applications.common import check_pooling
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.pretrained import application
from jaxvision.layers import Conv2D, Dense, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from jaxvision.models.convnets import model_rngs
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import register

__all__ = ["VGG", "VGG16", "VGG19", "decode_predictions", "preprocess_input", "vgg"]

# Convolutions per block (64, 128, 256, 512, 512 filters).
CONVS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)


def preprocess_input(x):
    """Keras's ``vgg16.preprocess_input`` (and ``vgg19``'s): mode ``"caffe"`` (RGB → BGR, minus
    the ImageNet mean).

    Examples:
        >>> import numpy as np
        >>> [round(float(v), 3) for v in preprocess_input(np.full((1, 1, 3), 128.0))[0, 0]]  # BGR minus the mean
        [24.061, 11.221, 4.32]
    """
    return _preprocess(x, mode="caffe")


class VGG(Functional):
    """The VGG graph; build it with ``VGG16``, ``VGG19`` or ``build_model("vgg16")``.

    Args:
      convs: convolutions in each of the five blocks, e.g. ``(2, 2, 3, 3, 3)`` for VGG16.
      include_top: end with ``flatten``, ``fc1``, ``fc2`` and the ``classes``-way ``predictions``.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      classifier_activation: of ``predictions`` (``None`` gives logits).
      input_shape: ``(height, width, 3)`` the classifier is built for (``fc1`` takes the
        flattened ``(height // 32) × (width // 32) × 512`` map); without the top, any size runs.
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    gradcam_layer = "block5_conv3"  # the last convolution, as in Keras's Grad-CAM examples
    preprocessing_mode = "caffe"  # of preprocess_input, for exported models

    def __init__(self, convs: Sequence[int], include_top: bool = True, pooling: str | None = None,
                 classes: int = 1000, classifier_activation: str | None = "softmax",
                 input_shape: Sequence[int] = (224, 224, 3), *, rngs: nnx.Rngs):
        check_pooling("VGG", pooling)
        if len(convs) != 5 or not all(isinstance(c, int) and c >= 1 for c in convs):
            raise ValueError(f"VGG: convs must be five positive convolution counts, got {convs!r}")
        self.convs, self.include_top, self.pooling, self.classes = tuple(convs), include_top, pooling, classes
        self.input_shape = tuple(input_shape)
        graph = GraphBuilder(self)
        x, channels = graph.input, 3
        for block, (count, filters) in enumerate(zip(convs, FILTERS), start=1):
            for c in range(1, count + 1):
                x = graph(Conv2D(channels, filters, 3, padding="same", activation="relu", rngs=rngs), x,
                          name=f"block{block}_conv{c}")
                channels = filters
            x = graph(MaxPooling2D(2, strides=2), x, name=f"block{block}_pool")
        if include_top:
            features = (self.input_shape[0] // 32) * (self.input_shape[1] // 32) * channels
            if features == 0:
                raise ValueError(f"VGG: with the top, input_shape must be at least 32 × 32, got {self.input_shape}")
            x = graph(Flatten(), x, name="flatten")
            x = graph(Dense(features, 4096, activation="relu", rngs=rngs), x, name="fc1")
            x = graph(Dense(4096, 4096, activation="relu", rngs=rngs), x, name="fc2")
            x = graph(Dense(4096, classes, activation=classifier_activation, rngs=rngs), x, name="predictions")
        elif pooling == "avg":
            x = graph(GlobalAveragePooling2D(), x)
        elif pooling == "max":
            x = graph(GlobalMaxPooling2D(), x)
        graph.finish(x)


@register
def vgg(depth: int = 16, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
        classifier_activation: str | None = "softmax", input_shape: Sequence[int] = (224, 224, 3),
        seed: int = 0) -> VGG:
    """VGG16/19 (``depth``) with random weights (what checkpoints rebuild before restoring
    theirs); the other arguments are ``VGG``'s."""
    if depth not in CONVS:
        raise ValueError(f"vgg: depth must be 16 or 19, got {depth!r}")
    return VGG(CONVS[depth], include_top, pooling, classes, classifier_activation, input_shape, rngs=model_rngs(seed))


def _constructor(depth: int):
    def constructor(include_top: bool = True, weights: str | os.PathLike | None = None,
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000, classifier_activation: str | None = "softmax", seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> VGG:
        return application(f"VGG{depth}", "vgg", weights=weights, include_top=include_top, classes=classes,
                           input_shape=input_shape, min_size=32, default_size=224,
                           url_folder=f"https://storage.googleapis.com/tensorflow/keras-applications/vgg{depth}/",
                           weights_name=f"vgg{depth}", manifest=manifest, depth=depth, pooling=pooling,
                           classifier_activation=classifier_activation, sized=True, seed=seed)

    constructor.__name__ = constructor.__qualname__ = f"VGG{depth}"
    constructor.__doc__ = f"""``keras.applications.VGG{depth}``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as ``VGG``.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``vgg{depth}_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras ``.h5`` /
        ``.weights.h5`` / ``.keras`` file.
      input_shape: optional ``(height, width, 3)``, each side at least 32; with the top it sizes
        ``fc1`` (default 224 × 224, the only size ImageNet weights with the top fit).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are scaled by ``jaxvision.applications.vgg.preprocess_input`` (mode "caffe").
"""
    return constructor


VGG16, VGG19 = _constructor(16), _constructor(19)
VGG16.__doc__ += """
    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: VGG16(input_shape=(32, 32, 3), classes=10))  # shapes only
        >>> model.fc1.kernel.shape, model.layer_shapes((1, 32, 32, 3))["predictions"]
        ((512, 4096), (1, 10))
"""
