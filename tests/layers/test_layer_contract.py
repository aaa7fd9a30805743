"""Contracts every layer keeps: consistent argument names and order, Keras's default names."""

import inspect

from flax import nnx

from jaxvision import layers
from jaxvision.layers import (BatchNormalization, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D,
                              ResidualBlock, SeparableConv2D)
from jaxvision.models import Sequential
from jaxvision.models.base import keras_name

CONVOLUTIONS = (Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D)


def parameters(layer: type) -> list[inspect.Parameter]:
    return list(inspect.signature(layer.__init__).parameters.values())[1:]  # without self


def test_input_size_is_in_channels_for_images_and_in_features_for_dense():
    for layer in (*CONVOLUTIONS, BatchNormalization, ResidualBlock):
        assert parameters(layer)[0].name == "in_channels", layer.__name__
    assert parameters(Dense)[0].name == "in_features"


def test_every_convolution_takes_dilation_rate_right_after_padding_then_keywords_only():
    for layer in CONVOLUTIONS:
        params = parameters(layer)
        names = [p.name for p in params]
        start = names.index("kernel_size")
        assert names[start:start + 4] == ["kernel_size", "strides", "padding", "dilation_rate"], layer.__name__
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[start + 4:]), layer.__name__


def test_default_names_are_keras_default_names(keras):
    from keras.src.utils.naming import to_snake_case  # the rule behind Keras's auto_name

    classes = [cls for cls in map(lambda name: getattr(layers, name), layers.__all__)
               if isinstance(cls, type) and issubclass(cls, nnx.Module) and hasattr(keras.layers, cls.__name__)]
    assert len(classes) >= 16  # every exported layer Keras also has
    for cls in classes:
        assert keras_name(cls) == to_snake_case(cls.__name__), cls.__name__
    up = lambda: Conv2DTranspose(1, 1, 1, rngs=nnx.Rngs(0))  # noqa: E731
    assert Sequential([up(), up()]).layer_names == ("conv2d_transpose", "conv2d_transpose_1")
    assert keras.layers.Conv2DTranspose(1, 1).name.startswith("conv2d_transpose")
