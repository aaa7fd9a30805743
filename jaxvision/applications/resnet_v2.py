"""ResNet50V2/101V2/152V2 (He et al., 2016, "Identity Mappings") exactly as
``keras.applications.resnet_v2`` builds them, on the ``ResNet`` graph.

Layer names are Keras's: ``conv1_pad``, ``conv1_conv``, ``pool1_pad``, ``pool1_pool``; per
block ``conv{s}_block{b}_preact_bn``, ``_preact_relu``, ``_0_conv`` (a stack's first block),
``_1_conv``, ``_1_bn``, ``_1_relu``, ``_2_pad``, ``_2_conv``, ``_2_bn``, ``_2_relu``,
``_3_conv`` and ``_out`` (the add); ``post_bn`` and ``post_relu`` (7 × 7 × 2048 at 224², the
Grad-CAM layer); then ``avg_pool`` and ``predictions``. The stride-2 blocks (the last of
stacks conv2…conv4) subsample their identity shortcut with a 1 × 1 max pooling that Keras
leaves unnamed: ``max_pooling2d``, ``max_pooling2d_1``, ``max_pooling2d_2`` here, as in a fresh
Keras session. Inputs are at least 32 × 32, in Keras's ``"tf"`` preprocessing ([-1, 1]).
"""

from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.imagenet_utils import preprocess_input as _preprocess
from jaxvision.applications.resnet import CONSTRUCTOR_DOC, DEPTHS, ResNet, _check_depth, _constructor
from jaxvision.models.convnets import model_rngs
from jaxvision.models.registry import register

__all__ = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "decode_predictions", "preprocess_input", "resnet_v2"]


def preprocess_input(x):
    """Keras's ``resnet_v2.preprocess_input``: mode ``"tf"``, ``x / 127.5 - 1``.

    Examples:
        >>> import numpy as np
        >>> preprocess_input(np.array([0.0, 255.0])).tolist()
        [-1.0, 1.0]
    """
    return _preprocess(x, mode="tf")


@register
def resnet_v2(depth: int = 50, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
              classifier_activation: str | None = "softmax", seed: int = 0) -> ResNet:
    """ResNet50V2/101V2/152V2 (``depth``) with random weights (what checkpoints rebuild before
    restoring theirs); the other arguments are ``ResNet``'s."""
    _check_depth("resnet_v2", depth, DEPTHS)
    return ResNet(DEPTHS[depth], True, include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


ResNet50V2, ResNet101V2, ResNet152V2 = (_constructor(depth, preact=True) for depth in (50, 101, 152))
for _depth, _fn in zip((50, 101, 152), (ResNet50V2, ResNet101V2, ResNet152V2)):
    _fn.__doc__ = CONSTRUCTOR_DOC.format(family=_fn.__name__, builder=f"resnet{_depth}v2",
                                         module="jaxvision.applications.resnet_v2", mode="tf")
ResNet50V2.__doc__ += """
    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: ResNet50V2(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 224, 224, 3))["post_relu"]
        (1, 7, 7, 2048)
"""
