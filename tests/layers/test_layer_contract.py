"""Contracts every layer keeps: consistent argument names and order."""

import inspect

from jaxvision.layers import (BatchNormalization, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D,
                              ResidualBlock, SeparableConv2D)

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
