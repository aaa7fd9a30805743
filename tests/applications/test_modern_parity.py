"""The depthwise and modern families equal keras.applications: one constructor per family
(MobileNetV2, MobileNetV3Small, EfficientNetB0, EfficientNetV2B0, ConvNeXtTiny) at a small
input size, on random weights Keras writes as legacy .h5 and as .weights.h5, in inference and
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
from jaxvision.weights.model_layers import keras_layers, layer_variables
from modern_twins import keras_outputs, numpy_initialisers, our_outputs, randomise_modern, write_both

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_params_modern.json").read_text())
# constructor: (keyword arguments for both libraries, input size, input range)
CASES = {
    "MobileNetV2": ({"alpha": 0.35, "classes": 10, "input_shape": (64, 64, 3)}, 64, (-1.0, 1.0)),
    "MobileNetV3Small": ({"classes": 10, "input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "EfficientNetB0": ({"classes": 10, "input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "EfficientNetV2B0": ({"classes": 10, "input_shape": (64, 64, 3)}, 64, (0.0, 255.0)),
    "ConvNeXtTiny": ({"classes": 10, "input_shape": (32, 32, 3)}, 32, (0.0, 255.0)),
}


def counts(model) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))


def weighted_layer_names(model) -> list[str]:
    """Top-level layers with weights in order (a nested model counts once, as in Keras)."""
    return list(dict.fromkeys(name.split("/")[0] for name in keras_layers(model)))


@pytest.mark.parametrize("name", list(CASES))
def test_parameter_counts_and_weight_order_equal_keras(name):
    model = nnx.eval_shape(lambda: getattr(applications, name)())
    keras = FIXTURE[name]
    assert counts(model) == keras["trainable"] + keras["non_trainable"]
    assert weighted_layer_names(model) == keras["weighted_layers"]


@pytest.fixture(scope="module", params=list(CASES))
def twins(request, keras, tmp_path_factory):
    name = request.param
    kwargs, size, (low, high) = CASES[name]
    with numpy_initialisers(seed=len(name)):
        twin = getattr(keras.applications, name)(weights=None, **kwargs)
    randomise_modern(twin, seed=1)
    legacy, weights_h5 = write_both(twin, str(tmp_path_factory.mktemp(name) / name))
    x = np.random.default_rng(0).uniform(low, high, (2, size, size, 3)).astype(np.float32)
    if not name.startswith("MobileNet"):
        kwargs = {k: v for k, v in kwargs.items() if k != "input_shape"}  # checked only: same graph
    model = getattr(applications, name)(weights=legacy, **kwargs)
    return name, model, getattr(applications, name)(weights=weights_h5, **kwargs), twin, x


def test_outputs_equal_keras_in_inference_and_batch_statistics_modes(twins):
    name, model, from_weights_h5, twin, x = twins
    keras_infer, keras_train, keras_stats = keras_outputs(twin, x)
    infer, train, stats = our_outputs(model, jnp.asarray(x))
    scale = np.abs(keras_infer).max()
    np.testing.assert_allclose(infer, keras_infer, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(train, keras_train, rtol=1e-5, atol=1e-5 * np.abs(keras_train).max())
    assert not np.allclose(train, infer, atol=1e-3 * scale)  # the two modes differ, so both were tested
    # The moving statistics the training pass leaves, BatchNorm by BatchNorm.
    keras_moving = {v.path: value for v, value in zip(twin.non_trainable_variables, keras_stats)}
    checked = 0
    layers = keras_layers(model)
    for layer_name, layer in layers.items():
        for var_name, variable in layer_variables(layer):
            path = f"{layer_name.split('/')[-1]}/{var_name}"
            if var_name.startswith("moving_") and path in keras_moving:
                ours = stats
                for key in (*layer_name.split("/"), var_name):
                    ours = ours[key]
                np.testing.assert_allclose(np.asarray(ours[...]), keras_moving[path], rtol=1e-5, atol=1e-6)
                checked += 1
    assert checked == 2 * sum(type(layer).__name__ == "BatchNormalization" for layer in layers.values())


def test_weights_h5_loads_the_same_tensors_as_legacy_h5(twins):
    name, model, from_weights_h5, _, _ = twins
    ours = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
    theirs = jax.tree.leaves(nnx.state(from_weights_h5, nnx.Param, nnx.BatchStat))
    assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs)), name
