"""ConvNeXtTiny, Small, Base, Large and XLarge (Liu et al., 2022) exactly as
``keras.applications`` builds them.

Keras's names, prefixed by the model name (``convnext_tiny``…): ``_prestem_normalization``
(with ``include_preprocessing``: ImageNet mean and variance on [0, 255] pixels, constants,
so ``preprocess_input`` is the identity, as in Keras); the nested Sequential models
``_stem`` (``_stem_conv`` 4×4 stride 4, ``_stem_layernorm``) and ``_downsampling_block_i``
(``_downsampling_layernorm_i``, ``_downsampling_conv_i`` 2×2 stride 2); blocks
``_stage_i_block_j``: ``_depthwise_conv`` (a 7×7 Conv2D with one group per channel),
``_layernorm``, ``_pointwise_conv_1`` (Dense 4×), ``_gelu``, ``_pointwise_conv_2``,
``_layer_scale`` and ``_identity`` (``_stochastic_depth`` with a ``drop_path_rate``), added to
the block input by an operation Keras leaves unnamed; jaxvision taps that sum, the block's
output, as ``_stage_i_block_j_output`` (the last one is the Grad-CAM layer with the top); the top ``_head_gap``, ``_head_layernorm``,
``_head_dense``, or without it the pooling and a final ``layer_normalization``. Every
LayerNormalization has epsilon 1e-6; GELU is the exact (erf) form.
"""

import os

import numpy as np
from flax import nnx

from jaxvision.applications.common import check_pooling, named
from jaxvision.applications.imagenet_utils import decode_predictions
from jaxvision.applications.mobilenet_v3 import preprocess_input
from jaxvision.applications.pretrained import check_input_shape, keras_application
from jaxvision.layers import (Activation, Conv2D, Dense, GlobalAveragePooling2D, GlobalMaxPooling2D, LayerNormalization,
                              LayerScale, Normalization, StochasticDepth)
from jaxvision.models.base import Sequential
from jaxvision.models.functional import INPUT, Functional, GraphBuilder
from jaxvision.models.rngs import model_rngs
from jaxvision.models.registry import register

__all__ = ["decode_predictions", "preprocess_input"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
VARIANTS = {"tiny": ((3, 3, 9, 3), (96, 192, 384, 768)), "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
            "base": ((3, 3, 27, 3), (128, 256, 512, 1024)), "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
            "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048))}


class ConvNeXt(Functional):
    """The ConvNeXt graph of ``variant`` ("tiny" … "xlarge")."""

    def __init__(self, variant: str, include_top: bool, pooling: str | None, classes: int,
                 classifier_activation: str | None, include_preprocessing: bool, drop_path_rate: float,
                 layer_scale_init_value: float | None, rngs: nnx.Rngs):
        depths, dims = VARIANTS[variant]
        name = f"convnext_{variant}"
        check_pooling(f"ConvNeXt{variant.title()}", pooling)

        def layer_norm(channels: int, layer_name: str | None) -> LayerNormalization:
            return LayerNormalization(channels, epsilon=1e-6, rngs=rngs, name=layer_name)

        g = GraphBuilder(self)
        x = INPUT
        if include_preprocessing:
            x = g(Normalization(3, mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
                                variance=((0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2),
                                name=f"{name}_prestem_normalization"), x)
        drop_rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))]
        channels, cur = 3, 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i == 0:
                stem = [(f"{name}_stem_conv", Conv2D(3, dim, 4, strides=4, rngs=rngs, name=f"{name}_stem_conv")),
                        (f"{name}_stem_layernorm", layer_norm(dim, f"{name}_stem_layernorm"))]
                x = g(Sequential(stem), x, name=f"{name}_stem")
            else:
                block = f"{name}_downsampling_block_{i - 1}"
                norm = f"{name}_downsampling_layernorm_{i - 1}"
                down = [(norm, layer_norm(channels, norm)),
                        (f"{name}_downsampling_conv_{i - 1}", Conv2D(channels, dim, 2, strides=2, rngs=rngs,
                                                                     name=f"{name}_downsampling_conv_{i - 1}"))]
                x = g(Sequential(down), x, name=block)
            channels = dim
            for j in range(depth):
                prefix, inputs = f"{name}_stage_{i}_block_{j}", x
                x = g(Conv2D(dim, dim, 7, padding="same", groups=dim, rngs=rngs, name=f"{prefix}_depthwise_conv"), x)
                x = g(layer_norm(dim, f"{prefix}_layernorm"), x)
                x = g(Dense(dim, 4 * dim, rngs=rngs, name=f"{prefix}_pointwise_conv_1"), x)
                x = g(Activation("gelu", name=f"{prefix}_gelu"), x)
                x = g(Dense(4 * dim, dim, rngs=rngs, name=f"{prefix}_pointwise_conv_2"), x)
                if layer_scale_init_value is not None:
                    x = g(LayerScale(layer_scale_init_value, dim, name=f"{prefix}_layer_scale"), x)
                if drop_rates[cur + j]:
                    x = g(StochasticDepth(drop_rates[cur + j], rngs=rngs, name=f"{prefix}_stochastic_depth"), x)
                else:
                    x = g(Activation("linear", name=f"{prefix}_identity"), x)
                x = g.operation("add_tensors", inputs, x, tap=f"{prefix}_output")
            cur += depth
        if include_top:
            x = g(GlobalAveragePooling2D(name=f"{name}_head_gap"), x)
            x = g(layer_norm(channels, f"{name}_head_layernorm"), x)
            x = g(Dense(channels, classes, activation=classifier_activation, rngs=rngs, name=f"{name}_head_dense"), x)
        else:
            if pooling == "avg":
                x = g(GlobalAveragePooling2D(), x)
            elif pooling == "max":
                x = g(GlobalMaxPooling2D(), x)
            x = g(layer_norm(channels, None), x)
        g.finish(x)


def _define(variant: str):
    """Register ``convnext_<variant>`` and return Keras's ``ConvNeXt<Variant>`` constructor."""
    keras_name = f"ConvNeXt{variant.title().replace('Xl', 'XL')}"

    def builder(include_top: bool = True, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", include_preprocessing: bool = True,
                drop_path_rate: float = 0.0, layer_scale_init_value: float | None = 1e-6,
                seed: int = 0) -> Functional:
        return ConvNeXt(variant, include_top, pooling, classes, classifier_activation, include_preprocessing,
                              drop_path_rate, layer_scale_init_value, model_rngs(seed))

    register(named(builder, f"convnext_{variant}", __name__,
                   f"{keras_name} with random weights (what checkpoints rebuild). ``drop_path_rate`` (0 in "
                   "Keras's constructors) turns on stochastic depth, growing linearly over the blocks."))

    def constructor(include_top: bool = True, include_preprocessing: bool = True,
                    weights: str | os.PathLike | None = None, input_shape: tuple[int, int, int] | None = None,
                    pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
                    drop_path_rate: float = 0.0, seed: int = 0,
                    manifest: str | os.PathLike | dict | None = None) -> Functional:
        check_input_shape(keras_name, input_shape, 32, 224, weights=weights, include_top=include_top)
        keras_file = f"convnext_{variant}{'' if include_top else '_notop'}.h5"
        return keras_application(keras_name, f"convnext_{variant}", weights, include_top=include_top,
                                 classes=classes, pooling=pooling, keras_file=keras_file,
                                 url=BASE_WEIGHTS_URL + keras_file, manifest=manifest,
                                 classifier_activation=classifier_activation,
                                 include_preprocessing=include_preprocessing, drop_path_rate=drop_path_rate, seed=seed)

    doc = f"""``keras.applications.{keras_name}``: the same arguments, layer names and weight files.

    Args:
      include_top, include_preprocessing, pooling, classes, classifier_activation: as in Keras.
      input_shape: checked only, by Keras's rules (at least 32 × 32; 224² with ImageNet weights and
        the top): the graph is the same for every size.
      weights: ``None`` (random, the default here), ``"imagenet"`` (Keras's
        ``convnext_{variant}[_notop].h5`` under ``$JAXVISION_DATA/pretrained/``, else
        downloaded) or a path to a Keras weights file.
      drop_path_rate: stochastic depth for fine-tuning (0, Keras's value, adds ``_identity`` layers).
      seed: for the random initial weights and stochastic depth.
      manifest: a weights manifest the loaded file must match.

    Inputs are [0, 255] pixels: the model normalises them itself (``include_preprocessing``).
    """
    return builder, named(constructor, keras_name, __name__, doc)


convnext_tiny, ConvNeXtTiny = _define("tiny")
convnext_small, ConvNeXtSmall = _define("small")
convnext_base, ConvNeXtBase = _define("base")
convnext_large, ConvNeXtLarge = _define("large")
convnext_xlarge, ConvNeXtXLarge = _define("xlarge")
__all__ += ["ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge"]
__all__ += ["convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "convnext_xlarge"]
