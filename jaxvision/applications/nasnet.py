"""NASNetMobile and NASNetLarge (Zoph et al., 2018) exactly as ``keras.applications`` builds them.

Keras's names: ``stem_conv1``, ``stem_bn1``; cells ``stem_1``, ``stem_2``, the normal cells
``0`` … and reduction cells ``reduce_N``, with ``adjust_*`` (matching the previous cell's
output), ``normal_conv_1_*`` / ``reduction_conv_1_*``, the separable blocks
``separable_conv_{1,2}[_bn]_<branch>_<cell>`` (``separable_conv_1_pad_*`` before stride 2),
poolings, ``*_add_*`` and ``*_concat_*``; unnamed layers keep a fresh Keras session's names
(``activation_N``, ``zero_padding2d``, ``cropping2d``, ``concatenate``, ``add``). The last
``activation`` is the Grad-CAM layer. BatchNormalization momentum 0.9997, epsilon 1e-3. Inputs
are scaled to [-1, 1] by ``preprocess_input`` (mode "tf") outside the model, as in Keras. The
cells compare the spatial sizes of their two inputs, so the graph depends on the size Keras
builds for: 224² (Mobile) and 331² (Large) by default, or ``input_shape``.
"""

import os

from flax import nnx

from jaxvision.applications.common import add_top, check_pooling, correct_pad, halve, keras_input_size, named
from jaxvision.applications.imagenet_utils import decode_predictions, preprocess_input
from jaxvision.applications.pretrained import keras_application
from jaxvision.layers import (Activation, Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Cropping2D,
                              MaxPooling2D, SeparableConv2D, ZeroPadding2D)
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["NASNetLarge", "NASNetMobile", "decode_predictions", "nasnet_large", "nasnet_mobile", "preprocess_input"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
# penultimate filters, blocks, stem filters, skip reduction, default size
VARIANTS = {"mobile": (1056, 4, 32, False, 224), "large": (4032, 6, 96, True, 331)}


MERGES = {"add": Add, "concatenate": Concatenate}


class _Cells:
    """NASNet's cells on a graph, tracking each tensor's (size, channels) as Keras's shapes."""

    def __init__(self, g: GraphBuilder, rngs: nnx.Rngs):
        self.g, self.rngs, self.meta = g, rngs, {}

    def __call__(self, layer, x: str, size=None, channels=None, name=None) -> str:
        out = self.g(layer, x, name=name)
        old_size, old_channels = self.meta[x]
        self.meta[out] = (old_size if size is None else size, old_channels if channels is None else channels)
        return out

    def merge(self, kind: str, *inputs: str, name: str | None = None) -> str:
        out = self.g(MERGES[kind](), list(inputs), name=name)
        size, channels = self.meta[inputs[0]]
        if kind == "concatenate":
            channels = sum(self.meta[i][1] for i in inputs)
        self.meta[out] = (size, channels)
        return out

    def relu(self, x: str, name: str | None = None) -> str:
        return self(Activation("relu", name=name or self.g.auto_name("activation")), x)

    def bn(self, x: str, name: str) -> str:
        return self(BatchNormalization(self.meta[x][1], momentum=0.9997, epsilon=1e-3, rngs=self.rngs, name=name), x)

    def conv(self, x: str, filters: int, name: str) -> str:
        return self(Conv2D(self.meta[x][1], filters, 1, padding="same", use_bias=False, rngs=self.rngs, name=name), x,
                    channels=filters)

    def separable_block(self, x: str, filters: int, kernel: int, strides: int, block_id: str) -> str:
        x = self.relu(x)
        size = self.meta[x][0]
        if strides == 2:
            x = self(ZeroPadding2D(correct_pad(size, kernel), name=f"separable_conv_1_pad_{block_id}"), x)
            size = halve(size)
        x = self(SeparableConv2D(self.meta[x][1], filters, kernel, strides=strides,
                                 padding="valid" if strides == 2 else "same", use_bias=False, rngs=self.rngs,
                                 name=f"separable_conv_1_{block_id}"), x, size=size, channels=filters)
        x = self.bn(x, f"separable_conv_1_bn_{block_id}")
        x = self.relu(x)
        x = self(SeparableConv2D(filters, filters, kernel, padding="same", use_bias=False, rngs=self.rngs,
                                 name=f"separable_conv_2_{block_id}"), x)
        return self.bn(x, f"separable_conv_2_bn_{block_id}")

    def pool(self, kind, x: str, strides: int, padding: str, name: str) -> str:
        """A 3 x 3 pooling: stride 1 "same", or stride 2 "valid" after Keras's correct padding."""
        size = self.meta[x][0]
        if strides == 2 and size is not None:
            size = tuple((n - 3) // 2 + 1 for n in size)
        return self(kind(3, strides=strides, padding=padding, name=name), x, size=size)

    def adjust(self, p: str | None, ip: str, filters: int, block_id: str) -> str:
        if p is None:
            return ip
        p_width, ip_width = (None if s is None else s[1] for s in (self.meta[p][0], self.meta[ip][0]))
        if p_width != ip_width:
            p = self.relu(p, name=f"adjust_relu_1_{block_id}")
            half = halve(self.meta[p][0])
            p1 = self(AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_1_{block_id}"), p, size=half)
            p1 = self.conv(p1, filters // 2, f"adjust_conv_1_{block_id}")
            p2 = self(ZeroPadding2D(((0, 1), (0, 1)), name=self.g.auto_name("zero_padding2d")), p)
            p2 = self(Cropping2D(((1, 0), (1, 0)), name=self.g.auto_name("cropping2d")), p2)
            p2 = self(AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_2_{block_id}"), p2, size=half)
            p2 = self.conv(p2, filters // 2, f"adjust_conv_2_{block_id}")
            p = self.merge("concatenate", p1, p2)
            return self.bn(p, f"adjust_bn_{block_id}")
        if self.meta[p][1] != filters:
            p = self.relu(p)
            p = self.conv(p, filters, f"adjust_conv_projection_{block_id}")
            return self.bn(p, f"adjust_bn_{block_id}")
        return p

    def normal(self, ip: str, p: str | None, filters: int, block_id: str) -> tuple[str, str]:
        p = self.adjust(p, ip, filters, block_id)
        h = self.bn(self.conv(self.relu(ip), filters, f"normal_conv_1_{block_id}"), f"normal_bn_1_{block_id}")
        x1 = self.merge("add", self.separable_block(h, filters, 5, 1, f"normal_left1_{block_id}"),
                        self.separable_block(p, filters, 3, 1, f"normal_right1_{block_id}"), name=f"normal_add_1_{block_id}")
        x2 = self.merge("add", self.separable_block(p, filters, 5, 1, f"normal_left2_{block_id}"),
                        self.separable_block(p, filters, 3, 1, f"normal_right2_{block_id}"), name=f"normal_add_2_{block_id}")
        x3 = self.merge("add", self.pool(AveragePooling2D, h, 1, "same", f"normal_left3_{block_id}"), p,
                        name=f"normal_add_3_{block_id}")
        x4 = self.merge("add", self.pool(AveragePooling2D, p, 1, "same", f"normal_left4_{block_id}"),
                        self.pool(AveragePooling2D, p, 1, "same", f"normal_right4_{block_id}"),
                        name=f"normal_add_4_{block_id}")
        x5 = self.merge("add", self.separable_block(h, filters, 3, 1, f"normal_left5_{block_id}"), h,
                        name=f"normal_add_5_{block_id}")
        return self.merge("concatenate", p, x1, x2, x3, x4, x5, name=f"normal_concat_{block_id}"), ip

    def reduction(self, ip: str, p: str | None, filters: int, block_id: str) -> tuple[str, str]:
        p = self.adjust(p, ip, filters, block_id)
        h = self.bn(self.conv(self.relu(ip), filters, f"reduction_conv_1_{block_id}"), f"reduction_bn_1_{block_id}")
        pads, size = correct_pad(self.meta[h][0], 3), self.meta[h][0]
        padded = None if size is None else (size[0] + sum(pads[0]), size[1] + sum(pads[1]))
        h3 = self(ZeroPadding2D(pads, name=f"reduction_pad_1_{block_id}"), h, size=padded)
        x1 = self.merge("add", self.separable_block(h, filters, 5, 2, f"reduction_left1_{block_id}"),
                        self.separable_block(p, filters, 7, 2, f"reduction_right1_{block_id}"),
                        name=f"reduction_add_1_{block_id}")
        x2 = self.merge("add", self.pool(MaxPooling2D, h3, 2, "valid", f"reduction_left2_{block_id}"),
                        self.separable_block(p, filters, 7, 2, f"reduction_right2_{block_id}"),
                        name=f"reduction_add_2_{block_id}")
        x3 = self.merge("add", self.pool(AveragePooling2D, h3, 2, "valid", f"reduction_left3_{block_id}"),
                        self.separable_block(p, filters, 5, 2, f"reduction_right3_{block_id}"),
                        name=f"reduction_add3_{block_id}")
        x4 = self.merge("add", x2, self.pool(AveragePooling2D, x1, 1, "same", f"reduction_left4_{block_id}"))
        x5 = self.merge("add", self.separable_block(x1, filters, 3, 1, f"reduction_left4_{block_id}"),
                        self.pool(MaxPooling2D, h3, 2, "valid", f"reduction_right5_{block_id}"),
                        name=f"reduction_add4_{block_id}")
        return self.merge("concatenate", x2, x3, x4, x5, name=f"reduction_concat_{block_id}"), ip


class NASNet(Functional):
    """The NASNet graph of ``variant`` ("mobile" or "large")."""

    preprocessing_mode = "tf"  # of preprocess_input, for exported models

    def __init__(self, variant: str, include_top: bool, pooling: str | None, classes: int,
                 classifier_activation: str | None, input_shape, rngs: nnx.Rngs):
        penultimate, blocks, stem_filters, skip_reduction, default_size = VARIANTS[variant]
        check_pooling(f"NASNet{variant.title()}", pooling)
        if variant == "mobile" and input_shape is None:
            input_shape = (224, 224, 3)  # Keras's NASNetMobile fixes it even without the top
        size = keras_input_size(input_shape, include_top, default_size)
        g = GraphBuilder(self)
        cells = _Cells(g, rngs)
        cells.meta[INPUT] = (size, 3)
        stem = None if size is None else tuple((n - 3) // 2 + 1 for n in size)
        x = cells(Conv2D(3, stem_filters, 3, strides=2, use_bias=False, rngs=rngs, name="stem_conv1"), INPUT,
                  size=stem, channels=stem_filters)
        x = cells.bn(x, "stem_bn1")
        filters, multiplier = penultimate // 24, 2
        x, p = cells.reduction(x, None, filters // multiplier**2, "stem_1")
        x, p = cells.reduction(x, p, filters // multiplier, "stem_2")
        for i in range(blocks):
            x, p = cells.normal(x, p, filters, f"{i}")
        x, p0 = cells.reduction(x, p, filters * multiplier, f"reduce_{blocks}")
        p = p0 if not skip_reduction else p
        for i in range(blocks):
            x, p = cells.normal(x, p, filters * multiplier, f"{blocks + i + 1}")
        x, p0 = cells.reduction(x, p, filters * multiplier**2, f"reduce_{2 * blocks}")
        p = p0 if not skip_reduction else p
        for i in range(blocks):
            x, p = cells.normal(x, p, filters * multiplier**2, f"{2 * blocks + i + 1}")
        x = cells.relu(x)
        g.finish(add_top(g, x, cells.meta[x][1], include_top=include_top, pooling=pooling, classes=classes,
                         classifier_activation=classifier_activation, rngs=rngs, named_pooling=False,
                         top_pool_name=None))


def _define(variant: str):
    keras_name = f"NASNet{variant.title()}"

    def builder(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", input_shape: list[int] | None = None,
                seed: int = 0) -> Functional:
        return NASNet(variant, include_top, pooling, classes, classifier_activation, input_shape,
                            model_rngs(seed))

    register(named(builder, f"nasnet_{variant}", __name__,
                   f"{keras_name} with random weights (what checkpoints rebuild before restoring theirs)."))

    def constructor(input_shape: tuple[int, int, int] | None = None, include_top: bool = True,
                    weights: str | os.PathLike | None = None, pooling: str | None = None, classes: int = 1000,
                    classifier_activation: str | None = "softmax", seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> Functional:
        keras_file = f"NASNet-{variant}{'' if include_top else '-no-top'}.h5"
        return keras_application(keras_name, f"nasnet_{variant}", weights, include_top=include_top,
                                 classes=classes, pooling=pooling, keras_file=keras_file,
                                 url=BASE_WEIGHTS_URL + keras_file, manifest=manifest,
                                 classifier_activation=classifier_activation,
                                 input_shape=None if input_shape is None else list(input_shape), seed=seed)

    doc = f"""``keras.applications.{keras_name}``: the same arguments, layer names and weight files.

    Args:
      input_shape: the size Keras builds for (default {VARIANTS[variant][4]}²); the cells' shapes depend on it.
      include_top, pooling, classes, classifier_activation: as in Keras.
      weights: ``None`` (random, the default here), ``"imagenet"`` (Keras's
        ``NASNet-{variant}[-no-top].h5`` under ``$JAXVISION_DATA/pretrained/``, else downloaded) or a
        path to a Keras weights file.
      seed: for the random initial weights.
      manifest: a weights manifest the loaded file must match.
    """
    return builder, named(constructor, keras_name, __name__, doc)


nasnet_mobile, NASNetMobile = _define("mobile")
nasnet_large, NASNetLarge = _define("large")
