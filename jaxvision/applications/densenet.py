"""DenseNet121/169/201 (Huang et al., 2017) exactly as ``keras.applications.densenet`` builds them.

Layer names are Keras's: ``conv1_conv``, ``conv1_bn``, ``conv1_relu``, ``pool1``; per dense
layer ``conv{s}_block{b}_0_bn``, ``_0_relu``, ``_1_conv`` (1×1, 128), ``_1_bn``, ``_1_relu``,
``_2_conv`` (3×3, 32: the growth rate) and ``_concat`` (the input with the 32 new channels);
per transition ``pool{s}_bn``, ``_relu``, ``_conv`` (halving the channels) and ``_pool`` (2×2
average); ``bn`` and ``relu`` (7 × 7 × 1024/1664/1920 at 224², the Grad-CAM layer); then
``avg_pool`` and ``predictions`` (``avg_pool``/``max_pool`` with ``pooling`` and no top).
Keras leaves the two input paddings unnamed: ``zero_padding2d`` and ``zero_padding2d_1``, as in
a fresh Keras session. BatchNormalization epsilon is 1.001e-5. Inputs are at least 32 × 32, in
Keras's ``"torch"`` preprocessing (``preprocess_input``).
"""

import os
from collections.abc import Sequence

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.pretrained import application
from jaxvision.layers import (Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, MaxPooling2D,
                              ZeroPadding2D)
from jaxvision.models.convnets import model_rngs
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import register

__all__ = ["DenseNet", "DenseNet121", "DenseNet169", "DenseNet201", "decode_predictions", "densenet",
           "preprocess_input"]

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
EPSILON = 1.001e-5
GROWTH_RATE = 32
BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def preprocess_input(x):
    """Keras's ``densenet.preprocess_input``: mode ``"torch"``, ``(x / 255 - mean) / std`` per
    RGB channel with the ImageNet statistics.

    Examples:
        >>> import numpy as np
        >>> [round(float(v), 4) for v in preprocess_input(np.full((1, 1, 3), 255.0))[0, 0]]
        [2.2489, 2.4286, 2.64]
    """
    return _preprocess(x, mode="torch")


class DenseNet(Functional):
    """The DenseNet graph; build it with ``DenseNet121`` … or ``build_model("densenet121")``.

    Args:
      blocks: dense layers in each of the four dense blocks, e.g. ``(6, 12, 24, 16)``.
      include_top: end with ``avg_pool`` and the ``classes``-way ``predictions`` Dense.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      classifier_activation: of ``predictions`` (``None`` gives logits).
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    preprocessing_mode = "torch"  # of preprocess_input, for exported models

    def __init__(self, blocks: Sequence[int], include_top: bool = True, pooling: str | None = None,
                 classes: int = 1000, classifier_activation: str | None = "softmax", *, rngs: nnx.Rngs):
        check_pooling("DenseNet", pooling)
        if len(blocks) != 4 or not all(isinstance(b, int) and b >= 1 for b in blocks):
            raise ValueError(f"DenseNet: blocks must be four positive layer counts, got {blocks!r}")
        self.blocks, self.include_top, self.pooling, self.classes = tuple(blocks), include_top, pooling, classes
        graph = GraphBuilder(self)

        def bn_relu(x: str, channels: int, name: str) -> str:
            x = graph(BatchNormalization(channels, epsilon=EPSILON, rngs=rngs), x, name=f"{name}_bn")
            return graph(Activation("relu"), x, name=f"{name}_relu")

        x = graph(ZeroPadding2D(((3, 3), (3, 3))), graph.input)
        x = graph(Conv2D(3, 64, 7, strides=2, use_bias=False, rngs=rngs), x, name="conv1_conv")
        x = bn_relu(x, 64, "conv1")
        x = graph(ZeroPadding2D(((1, 1), (1, 1))), x)
        x = graph(MaxPooling2D(3, strides=2), x, name="pool1")
        channels = 64
        for stack, count in enumerate(blocks, start=2):
            for b in range(1, count + 1):  # Keras's conv_block
                name = f"conv{stack}_block{b}"
                y = bn_relu(x, channels, f"{name}_0")
                y = graph(Conv2D(channels, 4 * GROWTH_RATE, 1, use_bias=False, rngs=rngs), y, name=f"{name}_1_conv")
                y = bn_relu(y, 4 * GROWTH_RATE, f"{name}_1")
                y = graph(Conv2D(4 * GROWTH_RATE, GROWTH_RATE, 3, padding="same", use_bias=False, rngs=rngs), y,
                          name=f"{name}_2_conv")
                x = graph(Concatenate(), [x, y], name=f"{name}_concat")
                channels += GROWTH_RATE
            if stack < 5:  # Keras's transition_block, reduction 0.5
                x = bn_relu(x, channels, f"pool{stack}")
                x = graph(Conv2D(channels, int(channels * 0.5), 1, use_bias=False, rngs=rngs), x,
                          name=f"pool{stack}_conv")
                channels = int(channels * 0.5)
                x = graph(AveragePooling2D(2, strides=2), x, name=f"pool{stack}_pool")
        x = graph(BatchNormalization(channels, epsilon=EPSILON, rngs=rngs), x, name="bn")
        x = graph(Activation("relu"), x, name="relu")
        x = add_top(graph, x, channels, include_top=include_top, pooling=pooling, classes=classes,
                    classifier_activation=classifier_activation, rngs=rngs, named_pooling=True)
        graph.finish(x)


@register
def densenet(depth: int = 121, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
             classifier_activation: str | None = "softmax", seed: int = 0) -> DenseNet:
    """DenseNet121/169/201 (``depth``) with random weights (what checkpoints rebuild before
    restoring theirs); the other arguments are ``DenseNet``'s."""
    if depth not in BLOCKS:
        raise ValueError(f"densenet: depth must be one of {sorted(BLOCKS)}, got {depth!r}")
    return DenseNet(BLOCKS[depth], include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


def _constructor(depth: int):
    def constructor(include_top: bool = True, weights: str | os.PathLike | None = None,
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000, classifier_activation: str | None = "softmax", seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> DenseNet:
        return application(f"DenseNet{depth}", "densenet", weights=weights, include_top=include_top,
                           classes=classes, input_shape=input_shape, min_size=32, default_size=224,
                           url_folder=WEIGHTS_URL, weights_name=f"densenet{depth}", manifest=manifest,
                           depth=depth, pooling=pooling, classifier_activation=classifier_activation, seed=seed)

    constructor.__name__ = constructor.__qualname__ = f"DenseNet{depth}"
    constructor.__doc__ = f"""``keras.applications.DenseNet{depth}``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as ``DenseNet``.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``densenet{depth}_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras ``.h5`` /
        ``.weights.h5`` / ``.keras`` file.
      input_shape: optional ``(height, width, 3)``, each side at least 32 (checked as Keras does).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are scaled by ``jaxvision.applications.densenet.preprocess_input`` (mode "torch").
"""
    return constructor


DenseNet121, DenseNet169, DenseNet201 = (_constructor(depth) for depth in BLOCKS)
DenseNet121.__doc__ += """
    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: DenseNet121(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 224, 224, 3))["relu"]
        (1, 7, 7, 1024)
"""
