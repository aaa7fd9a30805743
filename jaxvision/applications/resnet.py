"""ResNet50/101/152 (He et al., 2015) exactly as ``keras.applications.resnet`` builds them, and
the graph shared with ResNetV2 (``jaxvision.applications.resnet_v2``), as in Keras.

Layer names are Keras's: ``conv1_pad``, ``conv1_conv``, ``conv1_bn``, ``conv1_relu``,
``pool1_pad``, ``pool1_pool``; per block ``conv{s}_block{b}_{0..3}_{conv,bn}`` (``_0_`` is the
projection shortcut of a stack's first block), ``_{1,2}_relu``, ``_add`` and ``_out`` (the
block's output; ``conv5_block3_out``, 7 × 7 × 2048 at 224², is the Grad-CAM layer); then
``avg_pool`` and ``predictions`` (``avg_pool``/``max_pool`` with ``pooling`` and no top).
The 1 × 1 stride-2 convolutions of v1 sit at the start of a block (Caffe's placement);
every BatchNormalization uses epsilon 1.001e-5. Inputs are at least 32 × 32, in Keras's
``"caffe"`` preprocessing (``preprocess_input``: BGR, minus the ImageNet mean).
"""

import os
from collections.abc import Sequence

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.pretrained import application
from jaxvision.layers import Activation, Add, BatchNormalization, Conv2D, MaxPooling2D, ZeroPadding2D
from jaxvision.models.convnets import model_rngs
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import register

__all__ = ["ResNet", "ResNet50", "ResNet101", "ResNet152", "decode_predictions", "preprocess_input", "resnet"]

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
EPSILON = 1.001e-5
# Blocks per stack (conv2 … conv5) of each depth, v1 and v2 alike.
DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
FILTERS = (64, 128, 256, 512)  # bottleneck width of each stack; blocks output 4× as many


def preprocess_input(x):
    """Keras's ``resnet.preprocess_input``: mode ``"caffe"`` (RGB → BGR, minus the ImageNet mean).

    Examples:
        >>> import numpy as np
        >>> [round(float(v), 3) for v in preprocess_input(np.full((1, 1, 3), 128.0))[0, 0]]  # BGR minus the mean
        [24.061, 11.221, 4.32]
    """
    return _preprocess(x, mode="caffe")


def _conv_bn(graph: GraphBuilder, x: str, channels: int, filters: int, kernel: int, name: str, rngs: nnx.Rngs, *,
             strides: int = 1, padding: str = "valid", bn: bool = True, use_bias: bool = True) -> str:
    x = graph(Conv2D(channels, filters, kernel, strides=strides, padding=padding, use_bias=use_bias, rngs=rngs), x,
              name=f"{name}_conv")
    return graph(BatchNormalization(filters, epsilon=EPSILON, rngs=rngs), x, name=f"{name}_bn") if bn else x


def residual_block_v1(graph: GraphBuilder, x: str, channels: int, filters: int, stride: int, conv_shortcut: bool,
                      name: str, rngs: nnx.Rngs) -> str:
    """Keras's ``residual_block_v1``: 1×1 (stride) → 3×3 → 1×1 (4 × filters), post-activation."""
    shortcut = x
    if conv_shortcut:
        shortcut = _conv_bn(graph, x, channels, 4 * filters, 1, f"{name}_0", rngs, strides=stride)
    x = _conv_bn(graph, x, channels, filters, 1, f"{name}_1", rngs, strides=stride)
    x = graph(Activation("relu"), x, name=f"{name}_1_relu")
    x = _conv_bn(graph, x, filters, filters, 3, f"{name}_2", rngs, padding="same")
    x = graph(Activation("relu"), x, name=f"{name}_2_relu")
    x = _conv_bn(graph, x, filters, 4 * filters, 1, f"{name}_3", rngs)
    x = graph(Add(), [shortcut, x], name=f"{name}_add")
    return graph(Activation("relu"), x, name=f"{name}_out")


def residual_block_v2(graph: GraphBuilder, x: str, channels: int, filters: int, stride: int, conv_shortcut: bool,
                      name: str, rngs: nnx.Rngs) -> str:
    """Keras's ``residual_block_v2``: BN-ReLU first (pre-activation), the stride on the 3×3
    convolution, and an identity (or 1×1 max-pooled) shortcut except in a stack's first block."""
    preact = graph(BatchNormalization(channels, epsilon=EPSILON, rngs=rngs), x, name=f"{name}_preact_bn")
    preact = graph(Activation("relu"), preact, name=f"{name}_preact_relu")
    if conv_shortcut:
        shortcut = _conv_bn(graph, preact, channels, 4 * filters, 1, f"{name}_0", rngs, strides=stride, bn=False)
    else:
        shortcut = graph(MaxPooling2D(1, strides=stride), x) if stride > 1 else x
    x = _conv_bn(graph, preact, channels, filters, 1, f"{name}_1", rngs, use_bias=False)
    x = graph(Activation("relu"), x, name=f"{name}_1_relu")
    x = graph(ZeroPadding2D(((1, 1), (1, 1))), x, name=f"{name}_2_pad")
    x = _conv_bn(graph, x, filters, filters, 3, f"{name}_2", rngs, strides=stride, use_bias=False)
    x = graph(Activation("relu"), x, name=f"{name}_2_relu")
    x = _conv_bn(graph, x, filters, 4 * filters, 1, f"{name}_3", rngs, bn=False)
    return graph(Add(), [shortcut, x], name=f"{name}_out")


class ResNet(Functional):
    """The ResNet graph (Keras's ``ResNet`` function): v1 (``preact=False``, ResNet50…) or v2
    (``preact=True``, ResNet50V2…). Build it with ``ResNet50`` … or ``build_model("resnet50")``.

    Args:
      blocks: blocks in each of the four stacks, e.g. ``(3, 4, 6, 3)`` for ResNet50.
      preact: pre-activation (v2) blocks, with ``post_bn``/``post_relu`` after the last stack.
      include_top: end with ``avg_pool`` and the ``classes``-way ``predictions`` Dense.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      classifier_activation: of ``predictions`` (``None`` gives logits).
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    def __init__(self, blocks: Sequence[int], preact: bool = False, include_top: bool = True,
                 pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
                 *, rngs: nnx.Rngs):
        check_pooling("ResNetV2" if preact else "ResNet", pooling)
        if len(blocks) != 4 or not all(isinstance(b, int) and b >= 1 for b in blocks):
            raise ValueError(f"ResNet: blocks must be four positive block counts, got {blocks!r}")
        self.blocks, self.preact = tuple(blocks), preact
        self.preprocessing_mode = "tf" if preact else "caffe"  # of preprocess_input, for exported models
        self.include_top, self.pooling, self.classes = include_top, pooling, classes
        graph = GraphBuilder(self)
        x = graph(ZeroPadding2D(((3, 3), (3, 3))), graph.input, name="conv1_pad")
        x = _conv_bn(graph, x, 3, 64, 7, "conv1", rngs, strides=2, bn=not preact)
        if not preact:
            x = graph(Activation("relu"), x, name="conv1_relu")
        x = graph(ZeroPadding2D(((1, 1), (1, 1))), x, name="pool1_pad")
        x = graph(MaxPooling2D(3, strides=2), x, name="pool1_pool")
        channels = 64
        for stack, (filters, count) in enumerate(zip(FILTERS, blocks), start=2):
            for b in range(1, count + 1):
                name = f"conv{stack}_block{b}"
                if preact:  # the stride sits on a stack's last block; conv5 keeps its size
                    stride = 2 if b == count and stack < 5 else 1
                    x = residual_block_v2(graph, x, channels, filters, stride, b == 1, name, rngs)
                else:
                    stride = 2 if b == 1 and stack > 2 else 1
                    x = residual_block_v1(graph, x, channels, filters, stride, b == 1, name, rngs)
                channels = 4 * filters
        if preact:
            x = graph(BatchNormalization(channels, epsilon=EPSILON, rngs=rngs), x, name="post_bn")
            x = graph(Activation("relu"), x, name="post_relu")
        x = add_top(graph, x, channels, include_top=include_top, pooling=pooling, classes=classes,
                    classifier_activation=classifier_activation, rngs=rngs, named_pooling=True)
        graph.finish(x)


def _check_depth(family: str, depth: int, depths) -> None:
    if depth not in depths:
        raise ValueError(f"{family}: depth must be one of {sorted(depths)}, got {depth!r}")


@register
def resnet(depth: int = 50, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
           classifier_activation: str | None = "softmax", seed: int = 0) -> ResNet:
    """ResNet50/101/152 (``depth``) with random weights (what checkpoints rebuild before
    restoring theirs); the other arguments are ``ResNet``'s."""
    _check_depth("resnet", depth, DEPTHS)
    return ResNet(DEPTHS[depth], False, include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


def _constructor(depth: int, preact: bool):
    builder, weights_name = ("resnet_v2", f"resnet{depth}v2") if preact else ("resnet", f"resnet{depth}")
    family = f"ResNet{depth}{'V2' if preact else ''}"

    def constructor(include_top: bool = True, weights: str | os.PathLike | None = None,
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000, classifier_activation: str | None = "softmax", seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> ResNet:
        return application(family, builder, weights=weights, include_top=include_top, classes=classes,
                           input_shape=input_shape, min_size=32, default_size=224, url_folder=WEIGHTS_URL,
                           weights_name=weights_name, manifest=manifest, depth=depth, pooling=pooling,
                           classifier_activation=classifier_activation, seed=seed)

    constructor.__name__ = constructor.__qualname__ = family
    return constructor


ResNet50, ResNet101, ResNet152 = (_constructor(depth, preact=False) for depth in (50, 101, 152))
CONSTRUCTOR_DOC = """``keras.applications.{family}``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as ``ResNet``.
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``{builder}_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded) or a path to a Keras ``.h5`` /
        ``.weights.h5`` / ``.keras`` file.
      input_shape: optional ``(height, width, 3)``, each side at least 32 (checked as Keras
        does; the model takes any such size).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are scaled by ``{module}.preprocess_input`` (mode "{mode}").
"""
for _depth, _fn in zip((50, 101, 152), (ResNet50, ResNet101, ResNet152)):
    _fn.__doc__ = CONSTRUCTOR_DOC.format(family=_fn.__name__, builder=f"resnet{_depth}",
                                         module="jaxvision.applications.resnet", mode="caffe")
ResNet50.__doc__ += """
    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: ResNet50(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 224, 224, 3))["conv5_block3_out"]
        (1, 7, 7, 2048)
"""
