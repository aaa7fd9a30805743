"""The depthwise and modern families equal keras.applications: one constructor per family
(MobileNetV2, MobileNetV3Small, EfficientNetB0, EfficientNetV2B0, ConvNeXtTiny; NASNetMobile for
counts, order, summary and Grad-CAM layer only) at a small input size, on random weights Keras writes as legacy .h5 and as .weights.h5, in inference and
batch-statistics modes, with Keras's parameter counts and weighted-layer order (the fixture
written by fixtures/make_keras_params_modern.py). All 26 constructors:
bench/applications_parity_modern.py."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxvision.applications as applications
from jaxvision.applications.pretrained import build
from jaxvision.export import export_model
from jaxvision.interpret.gradcam import default_layer
from jaxvision.layers import count_params, unfreeze_except_batchnorm
from jaxvision.models import rebuild_model, summary
from jaxvision.weights.model_layers import keras_layers
from modern_twins import (keras_outputs, moving_statistics_pairs, numpy_initialisers, our_outputs, randomise_modern,
                          write_both)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_params_modern.json").read_text())
# constructor: (keyword arguments for both libraries, input size, input range)
# Both libraries build for the input size (it sets Keras's padding before stride-2 depthwise
# convolutions) and give logits (a saturated softmax would hide differences).
CASES = {
    "MobileNetV2": ({"alpha": 0.35, "input_shape": (64, 64, 3)}, 64, (-1.0, 1.0)),
    "MobileNetV3Small": ({"input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "EfficientNetB0": ({"input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "EfficientNetV2B0": ({"input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "ConvNeXtTiny": ({"input_shape": (32, 32, 3)}, 32, (0.0, 255.0)),
}
CASES = {name: ({"classes": 10, "classifier_activation": None, **kwargs}, size, pixels)
         for name, (kwargs, size, pixels) in CASES.items()}
# Batch-statistics mode on MobileNetV2's logits: measured 1.7e-5, 9.3e-6 and 1.2e-5 of the largest
# logit at batch 2, 4 and 8 (inference: 2.1e-7). debug.compare in training mode shows no layer
# departing: float32 rounding grows steadily through its 52 BatchNormalization layers on batch
# statistics (1e-7 at the first block, 5e-5 of its own scale at out_relu); the formula is Keras's.
BATCH_STATS_RTOL = {"MobileNetV2": 3e-5}


def counts(model) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))


def weighted_layer_names(model) -> list[str]:
    """Top-level layers with weights in order (a nested model counts once, as in Keras)."""
    return list(dict.fromkeys(name.split("/")[0] for name in keras_layers(model)))


# The Grad-CAM default (the last multi-position map) at Keras's default size: the last
# activation, or for ConvNeXt the last block's output (a sum Keras leaves unnamed, tapped here).
GRADCAM_LAYERS = {"MobileNetV2": "out_relu", "MobileNetV3Small": "activation_17", "EfficientNetB0": "top_activation",
                  "EfficientNetV2B0": "top_activation", "ConvNeXtTiny": "convnext_tiny_stage_3_block_2_output",
                  "NASNetMobile": "activation_187"}


# NASNet's outputs are compared by the bench script only (its Keras twin takes minutes to compile here).
@pytest.mark.parametrize("name", [*CASES, "NASNetMobile"])
def test_parameter_counts_weight_order_summary_and_grad_cam_layer_equal_keras(name):
    model = nnx.eval_shape(lambda: getattr(applications, name)())
    keras = FIXTURE[name]
    assert counts(model) == keras["trainable"] + keras["non_trainable"]
    assert count_params(model) == (keras["trainable"], keras["non_trainable"])  # Keras's split too
    assert weighted_layer_names(model) == keras["weighted_layers"]
    text = summary(model, (1, 224, 224, 3), print_fn=None)
    assert f"Total params: {keras['trainable'] + keras['non_trainable']:,}" in text
    assert f"Non-trainable params: {keras['non_trainable']:,}" in text
    assert f"{model.layer_names[-1]} (" in text.splitlines()[-5] and str(keras["output_shape"][-1]) in text.splitlines()[-5]
    assert default_layer(model, (1, 224, 224, 3)) == GRADCAM_LAYERS[name]


@pytest.mark.parametrize("name", ["EfficientNetB0", "ConvNeXtTiny"])
def test_fine_tuning_freezes_batch_normalization_but_not_layer_normalization(name):
    """Keras's advice (and listing 8.31's): unfreeze all but BatchNormalization. LayerNormalization
    has no moving statistics, so Keras keeps it trainable; so does unfreeze_except_batchnorm."""
    model = nnx.eval_shape(lambda: getattr(applications, name)())
    twin = nnx.eval_shape(lambda: rebuild_model(model.build_config))  # what a checkpoint's load_model does
    assert twin.layer_names == model.layer_names and counts(twin) == counts(model)
    model.trainable = False
    assert count_params(model)[0] == 0
    unfreeze_except_batchnorm(model)
    batchnorm = sum(int(np.prod(layer.gamma.shape)) * 2 for layer in keras_layers(model).values()
                    if type(layer).__name__ == "BatchNormalization")
    assert (batchnorm > 0) == (name == "EfficientNetB0")
    assert count_params(model)[0] == FIXTURE[name]["trainable"] - batchnorm
    layer_norms = [layer for layer in keras_layers(model).values() if type(layer).__name__ == "LayerNormalization"]
    assert all(layer.trainable for layer in layer_norms) and (len(layer_norms) > 0) == (name == "ConvNeXtTiny")


def test_export_contract_of_an_application_without_its_own_preprocessing_step(tmp_path):
    model = build("mobilenet_v3_small", "zeros", minimalistic=True, alpha=0.75)  # zero weights, nothing compiled
    folder = export_model(model, tmp_path / "v3", input_shape=(32, 32, 3), platforms=("cpu",))
    contract = json.loads((folder / "contract.json").read_text())
    assert contract["preprocessing"].startswith("none: RGB pixels in [0, 255]")  # the model rescales itself
    assert len(contract["class_names"]) == 1000 and contract["class_names"][386] == "African_elephant"


@pytest.fixture(scope="module", params=list(CASES))
def twins(request, keras, tmp_path_factory):
    name = request.param
    kwargs, size, (low, high) = CASES[name]
    with numpy_initialisers(seed=len(name)):
        twin = getattr(keras.applications, name)(weights=None, **kwargs)
    randomise_modern(twin, seed=1)
    legacy, weights_h5 = write_both(twin, str(tmp_path_factory.mktemp(name) / name))
    x = np.random.default_rng(0).uniform(low, high, (2, size, size, 3)).astype(np.float32)
    model = getattr(applications, name)(weights=legacy, **kwargs)
    return name, model, getattr(applications, name)(weights=weights_h5, **kwargs), twin, x


def test_outputs_equal_keras_in_inference_and_batch_statistics_modes(twins):
    name, model, from_weights_h5, twin, x = twins
    keras_infer, keras_train, keras_stats = keras_outputs(twin, x)
    infer, train, stats = our_outputs(model, jnp.asarray(x))
    scale = np.abs(keras_infer).max()
    np.testing.assert_allclose(infer, keras_infer, rtol=1e-5, atol=1e-5 * scale)
    rtol = BATCH_STATS_RTOL.get(name, 1e-5)
    np.testing.assert_allclose(train, keras_train, rtol=rtol, atol=rtol * np.abs(keras_train).max())
    has_batchnorm = any(type(layer).__name__ == "BatchNormalization" for layer in keras_layers(model).values())
    assert has_batchnorm != np.allclose(train, infer, atol=1e-3 * scale)  # with BatchNorm the modes differ
    # The moving statistics the training pass leaves, BatchNorm by BatchNorm.
    pairs, batchnorms = moving_statistics_pairs(model, stats, twin, keras_stats)
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert len(pairs) == 2 * batchnorms

def test_weights_h5_loads_the_same_tensors_as_legacy_h5(twins):
    name, model, from_weights_h5, _, _ = twins
    ours = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
    theirs = jax.tree.leaves(nnx.state(from_weights_h5, nnx.Param, nnx.BatchStat))
    assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs)), name


@pytest.mark.parametrize("twins", ["MobileNetV3Small"], indirect=True)
def test_debug_compare_finds_the_keras_twin_identical_and_a_changed_weight_where_it_is(twins):
    """``debug.compare`` layer by layer against the Keras twin (squeeze-and-excitation through
    Multiply, hard-swish, the Rescaling inside the model), then with one squeeze-and-excitation
    bias changed: the first divergence is that layer, not the output."""
    from jaxvision.debug import compare

    name, model, _, twin, x = twins
    report = compare(model, twin, x)
    # Only the one layer Keras names with a counter (other Keras models were built in this process).
    assert report.identical and {n.removeprefix("(reference) ").rstrip("_0123456789") for n in report.unmatched} == {
        "global_average_pooling2d"}, str(report)
    names = [row.name for row in report.rows]
    assert names[0] == "rescaling" and names[-1] == "output" and len(names) > 150
    assert "expanded_conv_squeeze_excite_mul" in names
    broken = nnx.clone(model)
    layer = keras_layers(broken)["expanded_conv_3_squeeze_excite_conv"]
    layer.bias[...] = layer.bias[...] + 0.1
    assert compare(broken, twin, x).first_divergence.name == "expanded_conv_3_squeeze_excite_conv"
