"""The rest of jaxvision on the classic families: without the top, Keras's layer names and
parameter counts, the default Grad-CAM layer, ``summary``, ``unfreeze_except_batchnorm`` and
checkpoint rebuilds for one constructor per family (built abstractly); Grad-CAM through a nested path, ``export_model``/``load_exported`` and
``debug.compare`` against the Keras twin on VGG16 at 32-64 px (every family:
``bench/applications_parity_classic.py``)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import applications
from jaxvision.export import KERAS_PREPROCESSING, export_model, load_exported
from jaxvision.interpret import grad_cam
from jaxvision.interpret.gradcam import default_layer
from jaxvision.layers import Dense, GlobalAveragePooling2D, count_params, unfreeze_except_batchnorm
from jaxvision.models import Sequential, rebuild_model, summary

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


@pytest.fixture(scope="module")
def vgg(keras):
    """VGG16 without the top and its Keras twin, both on the twin's random weights."""
    import tempfile

    keras.backend.clear_session()
    twin = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    path = Path(tempfile.mkdtemp()) / "vgg16.weights.h5"
    twin.save_weights(path)
    return applications.VGG16(include_top=False, weights=path), twin


def test_debug_compare_finds_vgg_identical_to_keras(vgg):
    from jaxvision.debug import compare

    model, twin = vgg
    x = applications.vgg.preprocess_input(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)))
    report = compare(model, twin, x)
    assert report.identical, str(report)
    assert [row.name for row in report.rows][:3] == ["block1_conv1", "block1_conv2", "block1_pool"]


def test_gradcam_through_a_nested_path_and_export(vgg, tmp_path):
    backbone, _ = vgg
    model = Sequential([("backbone", backbone), GlobalAveragePooling2D(),
                        Dense(512, 3, activation="softmax", rngs=nnx.Rngs(0))])
    images = np.random.default_rng(1).uniform(-50, 50, (2, 64, 64, 3)).astype(np.float32)
    heatmaps = grad_cam(model, images, "backbone/block5_conv3", class_index=1)
    assert heatmaps.shape == (2, 4, 4) and heatmaps.max() == pytest.approx(1.0)
    _, acts = model.intermediates(jnp.asarray(images), ["backbone/block5_conv3"])
    assert acts["backbone/block5_conv3"].shape == (2, 4, 4, 512)

    export_model(backbone, tmp_path / "vgg", input_shape=(64, 64, 3), platforms=("cpu",))
    contract = json.loads((tmp_path / "vgg" / "contract.json").read_text())
    assert contract["preprocessing"] == KERAS_PREPROCESSING["caffe"]
    run = load_exported(tmp_path / "vgg")
    np.testing.assert_allclose(run(images), np.asarray(backbone(jnp.asarray(images))), rtol=1e-5, atol=1e-4)
