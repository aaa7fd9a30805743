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
