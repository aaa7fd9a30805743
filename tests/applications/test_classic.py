"""The classic keras.applications families (VGG, ResNet, ResNetV2, DenseNet, InceptionV3,
InceptionResNetV2): Keras's layer names, order and parameter counts for all 13 constructors
with the top, built abstractly, against ``fixtures/keras_params_classic.json`` (written by
``make_keras_params_classic.py``); without the top: ``test_classic_tools.py`` (one per family),
``bench/applications_parity_classic.py`` (all). Outputs: ``tests/weights/test_classic_import.py``."""

import json
from pathlib import Path

import pytest
from flax import nnx

from jaxvision.applications import (VGG16, VGG19, DenseNet121, DenseNet169, DenseNet201, InceptionResNetV2,
                                    InceptionV3, ResNet50, ResNet50V2, ResNet101, ResNet101V2, ResNet152, ResNet152V2)
from jaxvision.layers import count_params

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_params_classic.json").read_text())["models"]
CONSTRUCTORS = {f.__name__: f for f in (VGG16, VGG19, ResNet50, ResNet101, ResNet152, ResNet50V2, ResNet101V2,
                                        ResNet152V2, DenseNet121, DenseNet169, DenseNet201, InceptionV3,
                                        InceptionResNetV2)}


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_layer_names_and_parameter_counts_equal_keras(name):
    expected = FIXTURE[name]
    model = nnx.eval_shape(lambda: CONSTRUCTORS[name]())  # shapes only: nothing allocated
    assert list(model.layer_names) == expected["layers"]
    assert count_params(model) == (expected["top"]["trainable"], expected["top"]["non_trainable"])


def test_bad_arguments_are_named_as_keras_names_them(tmp_path, monkeypatch):
    from jaxvision.models import build_model

    with pytest.raises(ValueError, match=r"ResNet50: input size must be at least 32x32, got input_shape=\(16, 40, 3\)"):
        ResNet50(input_shape=(16, 40, 3))
    with pytest.raises(ValueError, match=r"InceptionV3: with include_top=True and ImageNet weights, input_shape must "
                                         r"be \(299, 299, 3\)"):
        InceptionV3(weights="imagenet", input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match="DenseNet121: ImageNet weights with include_top=True need classes=1000"):
        DenseNet121(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\)"):
        VGG16(input_shape=(224, 224, 1))
    with pytest.raises(ValueError, match="VGG16: pooling must be None, 'avg' or 'max', got 'sum'"):
        VGG16(include_top=False, pooling="sum")
    with pytest.raises(ValueError, match=r"resnet_v2: depth must be one of \[50, 101, 152\], got 34"):
        build_model("resnet_v2", depth=34)
    with pytest.raises(FileNotFoundError, match="no_such.h5"):
        VGG19(weights=tmp_path / "no_such.h5")  # before building anything

    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("JAXVISION_DATA", str(tmp_path))
    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match=r"(?s)vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5 not found in "
                                           + str(tmp_path / "pretrained") + r".*keras-applications/vgg16/"):
        VGG16(include_top=False, weights="imagenet")
