"""Constructors check their arguments as Keras does, before anything is built: the depthwise
and modern families and Xception through ``jaxvision.applications.pretrained.keras_application``,
MobileNet with the same checks before its own weight loading (the classic families:
``test_classic.py``)."""

import pytest

from jaxvision.applications import (ConvNeXtTiny, EfficientNetB0, EfficientNetV2B1, MobileNet, MobileNetV2,
                                    MobileNetV3Small, NASNetMobile, Xception)
from jaxvision.models import registry

CONSTRUCTORS = [MobileNetV2, MobileNetV3Small, EfficientNetB0, EfficientNetV2B1, ConvNeXtTiny, NASNetMobile]


@pytest.fixture
def nothing_built(monkeypatch):
    def build(*args, **kwargs):
        raise AssertionError("built before the arguments were checked")

    for name in list(registry._BUILDERS):  # however a constructor reaches its builder
        monkeypatch.setitem(registry._BUILDERS, name, build)


@pytest.mark.parametrize("constructor", [*CONSTRUCTORS, Xception, MobileNet], ids=lambda f: f.__name__)
def test_argument_errors_name_the_constructor_and_come_before_building(constructor, nothing_built, tmp_path):
    name = constructor.__name__
    with pytest.raises(ValueError, match=f"{name}: ImageNet weights with include_top=True need classes=1000, got 10"):
        constructor(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match=f"{name}: pooling must be None, 'avg' or 'max', got 'sum'"):
        constructor(include_top=False, pooling="sum")
    with pytest.raises(FileNotFoundError, match="no_such.h5"):
        constructor(weights=tmp_path / "no_such.h5")


def test_input_shape_follows_keras_rules_where_the_graph_does_not_depend_on_it(nothing_built):
    with pytest.raises(ValueError, match=r"ConvNeXtTiny: input size must be at least 32x32, got input_shape=\(16, 64, 3\)"):
        ConvNeXtTiny(input_shape=(16, 64, 3))
    with pytest.raises(ValueError, match=r"EfficientNetV2B1: with include_top=True and ImageNet weights, input_shape "
                                         r"must be \(240, 240, 3\)"):
        EfficientNetV2B1(weights="imagenet", input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\)"):
        ConvNeXtTiny(input_shape=(64, 64, 1))


def test_constructors_keep_their_keras_names():
    assert [f.__name__ for f in CONSTRUCTORS] == ["MobileNetV2", "MobileNetV3Small", "EfficientNetB0",
                                                  "EfficientNetV2B1", "ConvNeXtTiny", "NASNetMobile"]
    assert ConvNeXtTiny.__module__ == "jaxvision.applications.convnext"
    assert ConvNeXtTiny.__doc__.startswith("``keras.applications.ConvNeXtTiny``")
