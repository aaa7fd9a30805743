"""The classic applications equal Keras 3 on Keras-written random weights, loaded from a
legacy ``.h5`` (by layer order) and a ``.weights.h5`` (by class and position), in inference
mode and with batch statistics; and the rest of jaxvision works on them: ``debug.compare``
against the Keras twin, ``export_model``/``load_exported``, Grad-CAM through a nested path.
One constructor per family at its smallest input size (all 13 at 224²/299²:
``bench/applications_parity_classic.py``).

Each family's Keras twin and jaxvision model are built once (a module fixture) and each
library's passes compiled once: the outputs come from ``debug``'s layer-by-layer passes,
which ``compare`` then reuses."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from classic_parity import keras_twin, max_relative_error
from jaxvision import applications
from jaxvision.debug import compare
from jaxvision.debug.compare import jaxvision_intermediates
from jaxvision.export import KERAS_PREPROCESSING, export_model, load_exported
from jaxvision.interpret import class_score_gradient, grad_cam
from jaxvision.models import Sequential
from jaxvision.weights import load_keras_weights

# The smallest constructor of each family at its smallest input size in Keras; its
# preprocess_input mode; the last block output with more than one position there, for Grad-CAM
# (the default layer at ImageNet sizes: test_classic_tools.py).
FAMILIES = {
    "VGG16": (32, "caffe", "block5_conv3"),
    "ResNet50": (32, "caffe", "conv4_block6_out"),
    "ResNet50V2": (32, "tf", "conv4_block5_out"),
    "DenseNet121": (32, "torch", "conv4_block24_concat"),
    "InceptionV3": (75, "tf", "mixed7"),
    "InceptionResNetV2": (75, "tf", "block17_10_ac"),
}


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, keras, tmp_path_factory):
    """``(name, twin, model, ours)``: the Keras twin (its outputs in both modes, every layer's
    in inference mode), the jaxvision model loaded from its legacy ``.h5`` (the format of
    Keras's ImageNet files) and every layer's output of that model in both modes."""
    name = request.param
    size = FAMILIES[name][0]
    twin = keras_twin(keras, name, size, tmp_path_factory.mktemp(name), layers=True,
                      batch=1 if name == "InceptionResNetV2" else 2)
    model = getattr(applications, name)(weights=twin.legacy_h5, input_shape=twin.x.shape[1:])
    ours = {training: jaxvision_intermediates(model, training=training)(twin.x) for training in (False, True)}
    return name, twin, model, ours


def test_outputs_equal_keras_on_keras_written_weights(family):
    name, twin, model, ours = family
    # The same tensors from the .weights.h5 (by class and position), into a zeroed copy.
    from_v3 = nnx.clone(model)
    nnx.update(from_v3, jax.tree.map(np.zeros_like, nnx.state(from_v3, nnx.Any(nnx.Param, nnx.BatchStat))))
    load_keras_weights(from_v3, twin.weights_h5)
    assert jax.tree.all(jax.tree.map(np.array_equal, nnx.state(model), nnx.state(from_v3)))
    assert max_relative_error(ours[False]["output"], twin.inference) < 1e-5
    assert max_relative_error(ours[True]["output"], twin.training) < 1e-5
    if name != "VGG16":  # VGG has no BatchNormalization: its two modes are one
        assert max_relative_error(ours[True]["output"], ours[False]["output"]) > 1e-2  # batch statistics were used


@pytest.mark.parametrize("training", [False, True], ids=["inference", "batch_statistics"])
def test_debug_compare_finds_every_layer_identical_to_keras(family, training):
    name, twin, model, ours = family
    report = compare(model, twin.model, twin.x, training=training)  # both passes already compiled
    assert report.identical, str(report)
    assert {row.name for row in report.rows} == {*model.layer_names, "output"}  # every layer, Keras's names


def test_export_and_load_exported_equal_keras(family, tmp_path):
    name, twin, model, _ = family
    export_model(model, tmp_path / name, input_shape=twin.x.shape[1:], platforms=("cpu",))
    contract = json.loads((tmp_path / name / "contract.json").read_text())
    assert contract["preprocessing"] == KERAS_PREPROCESSING[FAMILIES[name][1]]
    assert max_relative_error(load_exported(tmp_path / name)(twin.x), twin.inference) < 1e-5


def test_gradcam_through_a_nested_path(family):
    name, twin, model, ours = family
    layer = FAMILIES[name][2]
    wrapper = Sequential([("backbone", model)])
    activation, grads = class_score_gradient(wrapper, twin.x, f"backbone/{layer}")
    assert max_relative_error(activation, twin.layers[layer]) < 1e-5  # the path reached Keras's layer
    assert grads.shape == activation.shape and np.abs(grads).max() > 0
    heatmaps = grad_cam(wrapper, twin.x, f"backbone/{layer}")  # the compiled gradient, reused
    assert heatmaps.shape == activation.shape[:3] and heatmaps.min() >= 0
    # Each map peaks at 1, or is all zero where the weighted map is nowhere positive.
    positive = np.einsum("nhwc,nc->nhw", activation, grads.mean(axis=(1, 2))).max(axis=(1, 2)) > 0
    np.testing.assert_allclose(heatmaps.max(axis=(1, 2)), positive.astype(np.float32), atol=1e-6)
