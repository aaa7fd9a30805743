"""Every CAM, input attribution and ROAD score against pytorch-grad-cam 1.5.7 and Captum 0.9.0 on
a torch twin with the same weights (fixture written by make_attribution_fixtures.py; no torch
here). Maps are compared after pytorch-grad-cam's own min-max scaling, attributions and scores
as they are, to 1e-4."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import interpret
from jaxvision.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D
from jaxvision.models import Sequential

REFERENCE = Path(__file__).with_name("attribution_reference.npz")
LAYER = "features/conv2d_1"  # a nested path: the second conv's ReLU output, (N, 4, 4, 8)
CAMS = ["grad_cam", "grad_cam_plus_plus", "xgrad_cam", "hires_cam", "layer_cam", "eigen_cam", "score_cam",
        "ablation_cam"]


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def twin(reference):
    rngs = nnx.Rngs(0)
    features = Sequential([Conv2D(3, 6, 3, activation="relu", rngs=rngs), MaxPooling2D(2),
                           Conv2D(6, 8, 3, activation="relu", rngs=rngs)])
    model = Sequential([("features", features), GlobalAveragePooling2D(), Dense(8, 4, rngs=rngs)])
    for layer, name in ((features.conv2d, "conv1"), (features.conv2d_1, "conv2"), (model.dense, "dense")):
        layer.kernel[...] = jnp.asarray(reference[f"{name}_kernel"])
        layer.bias[...] = jnp.asarray(reference[f"{name}_bias"])
    np.testing.assert_allclose(model(reference["images"]), reference["logits"], rtol=1e-5, atol=1e-5)
    return model


def min_max(maps):
    """pytorch-grad-cam's ``scale_cam_image``: (m − min) / (max − min + 1e-7) per map."""
    low = maps.min(axis=(-2, -1), keepdims=True)
    return (maps - low) / ((maps - low).max(axis=(-2, -1), keepdims=True) + 1e-7)


def class_index(reference, case):
    return None if case == "top" else reference[f"{case}/classes"]


@pytest.mark.parametrize("case", ["top", "chosen"])
def test_cams_match_pytorch_grad_cam(reference, twin, case):
    classes = class_index(reference, case)
    for name in CAMS:
        maps = getattr(interpret, name)(twin, reference["images"], LAYER, classes)
        assert maps.shape == (2, 4, 4), name
        expected = reference[f"{case}/{name}"] if name != "eigen_cam" else eigen_reference(reference, twin)
        np.testing.assert_allclose(min_max(maps), expected, atol=1e-4, err_msg=name)


def eigen_reference(reference, twin):
    """pytorch-grad-cam's projection with jaxvision's sign rule (positive correlation with the
    channel-summed activation), ReLU'd and scaled as pytorch-grad-cam does."""
    projection = reference["eigen_projection"]
    total = interpret.activations(twin, reference["images"], [LAYER])[LAYER].sum(-1)
    sign = np.sign((projection * total).sum(axis=(1, 2)))[:, None, None]
    return min_max(np.maximum(sign * projection, 0))


def test_several_classes_at_once_are_the_per_class_maps(reference, twin):
    """An (N, K) class_index gives the K maps of K single-class calls, in one program."""
    both = np.stack([reference["top/classes"], reference["chosen/classes"]], axis=1)  # (2, 2)
    for name in ["grad_cam_plus_plus", "hires_cam", "score_cam", "ablation_cam"]:
        maps = getattr(interpret, name)(twin, reference["images"], LAYER, both)
        assert maps.shape == (2, 2, 4, 4)
        for k, case in enumerate(["top", "chosen"]):
            np.testing.assert_allclose(min_max(maps[:, k]), reference[f"{case}/{name}"], atol=1e-4, err_msg=name)


@pytest.mark.parametrize("case", ["top", "chosen"])
def test_input_attributions_match_captum(reference, twin, case):
    images, classes = reference["images"], class_index(reference, case)
    for name in ["gradients", "gradient_times_input", "guided_backprop"]:
        np.testing.assert_allclose(getattr(interpret, name)(twin, images, classes), reference[f"{case}/{name}"],
                                   atol=1e-5, rtol=1e-4, err_msg=name)
    occluded = interpret.occlusion(twin, images, classes, window=(4, 4), stride=(2, 2))
    np.testing.assert_allclose(occluded, reference[f"{case}/occlusion"], atol=1e-5, rtol=1e-4)
    for rule in ("gausslegendre", "riemann_trapezoid"):
        for baseline in (0.0, 0.5):
            key = f"{case}/integrated_gradients/{rule}/{baseline}"
            ig = interpret.integrated_gradients(twin, images, classes, baseline=baseline, steps=16, rule=rule, chunk=5)
            np.testing.assert_allclose(ig, reference[key], atol=1e-5, rtol=1e-4, err_msg=key)
            error = interpret.completeness_error(twin, images, ig, baseline, classes)
            np.testing.assert_allclose(error, reference[f"{key}/delta"], atol=1e-4, err_msg=key)


def test_road_matches_pytorch_grad_cam(reference, twin):
    scores = interpret.road(twin, reference["images"], reference["road/maps"], reference["chosen/classes"],
                            percentiles=(20, 50, 80), noise=0.0)
    assert scores["morf"].shape == scores["lerf"].shape == (2, 3)
    np.testing.assert_allclose(scores["morf"], reference["road/morf"], atol=1e-4)
    np.testing.assert_allclose(scores["lerf"], reference["road/lerf"], atol=1e-4)
    np.testing.assert_allclose(scores["combined"], reference["road/combined"], atol=1e-4)
    assert np.abs(reference["road/morf"]).min() > 1e-3  # the imputation changes the score
