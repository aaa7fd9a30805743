"""The rest of jaxvision on the classic families: without the top, Keras's layer names and
parameter counts, the default Grad-CAM layer, ``summary``, ``unfreeze_except_batchnorm`` and
checkpoint rebuilds for one constructor per family (built abstractly). Grad-CAM through a
nested path, ``export_model``/``load_exported`` and ``debug.compare`` against the Keras twin,
on real weights: ``tests/weights/test_classic_import.py``, with the parity tests that build
the twins."""

import json
from pathlib import Path

import pytest
from flax import nnx

from jaxvision import applications
from jaxvision.interpret.gradcam import default_layer
from jaxvision.layers import count_params, unfreeze_except_batchnorm
from jaxvision.models import rebuild_model, summary

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_params_classic.json").read_text())["models"]
# Smallest constructor of each family: ImageNet input size, default Grad-CAM layer and its shape there.
FAMILIES = {
    "VGG16": (224, "block5_conv3", (1, 14, 14, 512)),
    "ResNet50": (224, "conv5_block3_out", (1, 7, 7, 2048)),
    "ResNet50V2": (224, "post_relu", (1, 7, 7, 2048)),
    "DenseNet121": (224, "relu", (1, 7, 7, 1024)),
    "InceptionV3": (299, "mixed10", (1, 8, 8, 2048)),
    "InceptionResNetV2": (299, "conv_7b_ac", (1, 8, 8, 1536)),
}


@pytest.mark.parametrize("name", FAMILIES)
def test_without_top_names_counts_gradcam_layer_summary_unfreezing_and_rebuild(name):
    size, layer, shape = FAMILIES[name]
    expected = FIXTURE[name]
    model = nnx.eval_shape(lambda: getattr(applications, name)(include_top=False))
    assert list(model.layer_names) == expected["layers"][:expected["no_top_layers"]]
    trainable, frozen = expected["no_top"]["trainable"], expected["no_top"]["non_trainable"]
    assert count_params(model) == (trainable, frozen)
    input_shape = (1, size, size, 3)
    assert default_layer(model, input_shape) == layer
    assert model.layer_shapes(input_shape)[layer] == shape
    text = summary(model, input_shape, print_fn=None)
    rows = {line.strip("│ ").split()[0] for line in text.splitlines() if line.strip("│ ")}  # Keras's boxed table
    assert set(model.layer_names) <= rows  # every layer, merge layers included
    assert f"Total params: {trainable + frozen:,}" in text
    model.trainable = False
    assert count_params(model) == (0, trainable + frozen)
    unfreeze_except_batchnorm(model)
    # BatchNormalization's gamma and beta stay frozen: as many as its two moving statistics, or
    # half as many in the Inception families (scale=False: beta only).
    batchnorm = frozen // 2 if name.startswith("Inception") else frozen
    assert count_params(model) == (trainable - batchnorm, frozen + batchnorm)
    twin = nnx.eval_shape(lambda: rebuild_model(model.build_config))  # what load_model does
    assert twin.layer_names == model.layer_names
