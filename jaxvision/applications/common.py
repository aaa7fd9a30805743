"""Helpers the ``keras.applications`` builders share: Keras's default input size, its
"correct" padding before strided depthwise convolutions, channel rounding, the argument checks,
and the end of every graph: the classifier (``include_top``) or the optional global pooling of
the features (``pooling``), with Keras's layer names."""

import math
import os
from collections.abc import Sequence

from flax import nnx

from jaxvision.layers import Dense, Dropout, GlobalAveragePooling2D, GlobalMaxPooling2D
from jaxvision.models.functional import GraphBuilder

Size = tuple[int, int] | None


def keras_input_size(input_shape: Sequence[int] | None, include_top: bool, default_size: int) -> Size:
    """The (height, width) Keras builds the graph for (``imagenet_utils.obtain_input_shape``):
    ``input_shape``'s, else ``default_size`` square with the top, else unknown (``None``)."""
    if input_shape is not None:
        if len(input_shape) != 3 or input_shape[2] != 3:
            raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)!r}")
        if input_shape[0] is None or input_shape[1] is None:
            return None
        if min(input_shape[:2]) < 32:
            raise ValueError(f"input_shape must be at least 32 x 32, got {tuple(input_shape)!r}")
        return int(input_shape[0]), int(input_shape[1])
    return (default_size, default_size) if include_top else None


def correct_pad(size: Size, kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ``imagenet_utils.correct_pad``: the zero padding before a stride-2 "valid"
    depthwise convolution. It depends on the size Keras *built* the model for: with an
    unknown size it is always ``(k//2 - 1, k//2)``, so an odd input then differs from "same"."""
    adjust = (1, 1) if size is None else (1 - size[0] % 2, 1 - size[1] % 2)
    c = kernel_size // 2
    return (c - adjust[0], c), (c - adjust[1], c)


def halve(size: Size) -> Size:
    """The size after a stride-2 convolution with "same" or Keras's correct padding."""
    return None if size is None else (math.ceil(size[0] / 2), math.ceil(size[1] / 2))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10% down (the TF
    MobileNet rule Keras calls ``_make_divisible`` / ``_depth``)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def named(function, name: str, module: str, doc: str):
    """``function`` under a public ``name`` in ``module`` with ``doc``: the builders and
    constructors a family defines per variant in a loop show up in help, docs and tracebacks
    as if written out one by one."""
    function.__name__ = function.__qualname__ = name
    function.__module__ = module
    function.__doc__ = doc
    return function


def check_weights_arguments(family: str, weights: str | os.PathLike | None, include_top: bool, classes: int,
                            pooling: str | None) -> None:
    """The argument errors every ``keras.applications`` builder raises."""
    check_pooling(family, pooling)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"{family}: ImageNet weights with include_top=True need classes=1000, got {classes}")


def check_pooling(family: str, pooling: str | None) -> None:
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{family}: pooling must be None, 'avg' or 'max', got {pooling!r}")


def add_top(graph: GraphBuilder, x: str, channels: int, *, include_top: bool, pooling: str | None, classes: int,
            classifier_activation: str | None, rngs: nnx.Rngs, named_pooling: bool,
            top_pool_name: str | None = "avg_pool", dropout_rate: float = 0.0) -> str:
    """With the top: global average pooling named ``top_pool_name`` (``None``: auto-named, as
    MobileNetV2 and NASNet), ``top_dropout`` when ``dropout_rate`` > 0 (EfficientNet), then the
    ``predictions`` Dense. Without: ``pooling`` "avg" or "max", named ``avg_pool``/``max_pool``
    where Keras names them (``named_pooling``: ResNet, DenseNet, EfficientNet), else auto-named
    (``global_average_pooling2d``…); ``None`` keeps the 4-D map."""
    if include_top:
        x = graph(GlobalAveragePooling2D(), x, name=top_pool_name)
        if dropout_rate > 0:
            x = graph(Dropout(dropout_rate, rngs=rngs), x, name="top_dropout")
        return graph(Dense(channels, classes, activation=classifier_activation, rngs=rngs), x, name="predictions")
    if pooling == "avg":
        return graph(GlobalAveragePooling2D(), x, name="avg_pool" if named_pooling else None)
    if pooling == "max":
        return graph(GlobalMaxPooling2D(), x, name="max_pool" if named_pooling else None)
    return x
