"""Xception-41 (Chollet, 2017) exactly as ``keras.applications.Xception`` builds it.

Layer names are Keras's: ``block1_conv1`` … ``block14_sepconv2_act`` (the last activation,
10 × 10 × 2048 at 299², the Grad-CAM layer), then ``avg_pool`` and ``predictions``. Keras
leaves the four residual projections unnamed; they get the names a fresh Keras session
gives them, ``conv2d``, ``batch_normalization``, ``add`` … ``conv2d_3`` (the adds run to
``add_11``). Weight files pair them by position as Keras does, so files written by any Keras
session (and KerasHub's ``blockN_residual_*`` presets) load. The attributes are created in
the order of Keras's ``model.layers``, so weight order and ``.weights.h5`` keys agree too.
"""

import os

import jax
from flax import nnx

from jaxvision.applications.common import check_pooling
from jaxvision.applications.pretrained import keras_application
from jaxvision.layers import (Activation, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
                              GlobalMaxPooling2D, MaxPooling2D, SeparableConv2D)
from jaxvision.models.base import Model, Tap
from jaxvision.models.convnets import model_rngs
from jaxvision.models.registry import register

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
WEIGHTS = {  # file name, sha256 of Keras's release file (Keras itself checks md5 0a58e3b7…/b0042744…)
    True: ("xception_weights_tf_dim_ordering_tf_kernels.h5",
           "c5bf1c05b020c4177164039b854c3ef92b16b73384734647c1f0ad5cf79f6975"),
    False: ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "e3fa32521ed48ced4af05adc950ab24963c4a00bd42e6825f8b180c65853163c"),
}
# (block, output filters of its two separable convs, residual index) of the downsampling blocks.
ENTRY_BLOCKS = ((2, (128, 128), 0), (3, (256, 256), 1), (4, (728, 728), 2), (13, (728, 1024), 3))
MIDDLE_BLOCKS = range(5, 13)


def _suffix(index: int) -> str:
    return "" if index == 0 else f"_{index}"


class XceptionNet(Model):
    """The Xception-41 graph; build it with [Xception][jaxvision.applications.Xception] (weights)
    or ``build_model("xception")``.

    Args:
      include_top: end with ``avg_pool`` and the ``classes``-way ``predictions`` Dense.
      pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
      classes: classifier outputs.
      classifier_activation: of ``predictions`` (``None`` gives logits, as KerasHub's classifier).
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    preprocessing_mode = "tf"  # keras.applications.xception.preprocess_input

    def __init__(self, include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: str | None = "softmax", *, rngs: nnx.Rngs):
        check_pooling("Xception", pooling)
        self.include_top, self.pooling, self.classes = include_top, pooling, classes
        names: list[str] = []

        def add(name: str, layer: nnx.Module | None) -> None:  # None: an add, tapped but no layer
            if layer is not None:
                setattr(self, name, layer)
            names.append(name)

        def sepconv(name: str, channels: int, filters: int) -> None:
            add(name, SeparableConv2D(channels, filters, 3, padding="same", use_bias=False, rngs=rngs, name=name))
            add(f"{name}_bn", BatchNormalization(filters, rngs=rngs, name=f"{name}_bn"))

        add("block1_conv1", Conv2D(3, 32, 3, strides=2, use_bias=False, rngs=rngs, name="block1_conv1"))
        add("block1_conv1_bn", BatchNormalization(32, rngs=rngs, name="block1_conv1_bn"))
        add("block1_conv1_act", Activation("relu", name="block1_conv1_act"))
        add("block1_conv2", Conv2D(32, 64, 3, use_bias=False, rngs=rngs, name="block1_conv2"))
        add("block1_conv2_bn", BatchNormalization(64, rngs=rngs, name="block1_conv2_bn"))
        add("block1_conv2_act", Activation("relu", name="block1_conv2_act"))
        channels = 64
        for block, (first, second), r in ENTRY_BLOCKS:
            if block == 13:
                for middle in MIDDLE_BLOCKS:  # Keras lists the middle flow before block 13
                    for k in (1, 2, 3):
                        add(f"block{middle}_sepconv{k}_act", Activation("relu", name=f"block{middle}_sepconv{k}_act"))
                        sepconv(f"block{middle}_sepconv{k}", 728, 728)
                    add(f"add_{middle - 2}", None)
            if block != 2:
                add(f"block{block}_sepconv1_act", Activation("relu", name=f"block{block}_sepconv1_act"))
            sepconv(f"block{block}_sepconv1", channels, first)
            add(f"block{block}_sepconv2_act", Activation("relu", name=f"block{block}_sepconv2_act"))
            sepconv(f"block{block}_sepconv2", first, second)
            add(f"conv2d{_suffix(r)}", Conv2D(channels, second, 1, strides=2, padding="same", use_bias=False,
                                              rngs=rngs, name=f"conv2d{_suffix(r)}"))
            add(f"block{block}_pool", MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool"))
            add(f"batch_normalization{_suffix(r)}", BatchNormalization(second, rngs=rngs,
                                                                       name=f"batch_normalization{_suffix(r)}"))
            add(f"add{_suffix(11 if block == 13 else r)}", None)
            channels = second
        sepconv("block14_sepconv1", 1024, 1536)
        add("block14_sepconv1_act", Activation("relu", name="block14_sepconv1_act"))
        sepconv("block14_sepconv2", 1536, 2048)
        add("block14_sepconv2_act", Activation("relu", name="block14_sepconv2_act"))
        if include_top:
            add("avg_pool", GlobalAveragePooling2D(name="avg_pool"))
            add("predictions", Dense(2048, classes, activation=classifier_activation, rngs=rngs, name="predictions"))
        elif pooling == "avg":
            add("global_average_pooling2d", GlobalAveragePooling2D(name="global_average_pooling2d"))
        elif pooling == "max":
            add("global_max_pooling2d", GlobalMaxPooling2D(name="global_max_pooling2d"))
        self.layer_names = tuple(names)

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        def run(*names: str) -> None:
            nonlocal x
            for name in names:
                x = tap(name, getattr(self, name)(x))

        run("block1_conv1", "block1_conv1_bn", "block1_conv1_act", "block1_conv2", "block1_conv2_bn",
            "block1_conv2_act")
        for block, _, r in ENTRY_BLOCKS:
            if block == 13:
                for middle in MIDDLE_BLOCKS:
                    residual = x
                    for k in (1, 2, 3):
                        run(f"block{middle}_sepconv{k}_act", f"block{middle}_sepconv{k}", f"block{middle}_sepconv{k}_bn")
                    x = tap(f"add_{middle - 2}", x + residual)
            residual = x
            if block != 2:
                run(f"block{block}_sepconv1_act")
            run(f"block{block}_sepconv1", f"block{block}_sepconv1_bn", f"block{block}_sepconv2_act",
                f"block{block}_sepconv2", f"block{block}_sepconv2_bn")
            residual = tap(f"conv2d{_suffix(r)}", getattr(self, f"conv2d{_suffix(r)}")(residual))
            run(f"block{block}_pool")
            bn = f"batch_normalization{_suffix(r)}"
            residual = tap(bn, getattr(self, bn)(residual))
            x = tap(f"add{_suffix(11 if block == 13 else r)}", x + residual)
        run("block14_sepconv1", "block14_sepconv1_bn", "block14_sepconv1_act", "block14_sepconv2",
            "block14_sepconv2_bn", "block14_sepconv2_act")
        run(*self.layer_names[self.layer_names.index("block14_sepconv2_act") + 1:])
        return x


@register
def xception(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
             classifier_activation: str | None = "softmax", seed: int = 0) -> XceptionNet:
    """Xception-41 with random weights (what checkpoints rebuild before restoring theirs)."""
    return XceptionNet(include_top, pooling, classes, classifier_activation, rngs=model_rngs(seed))


def Xception(include_top: bool = True, weights: str | os.PathLike | None = None, pooling: str | None = None,
             classes: int = 1000, classifier_activation: str | None = "softmax", seed: int = 0,
             manifest: str | os.PathLike | dict | None = None) -> XceptionNet:
    """``keras.applications.Xception``: the same arguments, layer names and weight files.

    Args:
      include_top, pooling, classes, classifier_activation: as [XceptionNet][jaxvision.applications.XceptionNet].
      weights: ``None`` (random, the default here, unlike Keras), ``"imagenet"`` (Keras's
        ``xception_weights_tf_dim_ordering_tf_kernels[_notop].h5`` under
        ``$JAXVISION_DATA/pretrained/``, else downloaded and sha256-checked), or a path: a
        Keras ``.h5`` / ``.weights.h5`` file or a KerasHub ``xception_41_imagenet`` preset
        directory (its classifier gives logits; pass ``classifier_activation=None`` to match).
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match (see ``MobileNet``).

    Inputs are at least 71 × 71, scaled by [preprocess_input][jaxvision.applications.preprocess_input].

    Examples:
        >>> from flax import nnx
        >>> model = nnx.eval_shape(lambda: Xception(include_top=False))  # shapes only, no weights
        >>> model.layer_shapes((1, 299, 299, 3))["block14_sepconv2_act"]
        (1, 10, 10, 2048)
    """
    keras_file, sha256 = WEIGHTS[include_top]
    return keras_application("Xception", "xception", weights, include_top=include_top, classes=classes,
                             pooling=pooling, keras_file=keras_file, url=WEIGHTS_URL + keras_file, sha256=sha256,
                             manifest=manifest, classifier_activation=classifier_activation, seed=seed)
