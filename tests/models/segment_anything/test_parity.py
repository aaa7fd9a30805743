"""Parity with Meta's segment-anything 1.0 on the same random weights.

``sam_tiny.pth`` (written by torch) is loaded through jaxvision's torch-free importer;
``sam_tiny_reference.npz`` holds the reference's outputs at every stage, both made by
``make_fixture.py`` (its docstring has the command).
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.models.segment_anything import CONFIGS, SamPredictor, load_sam, predict_masks

HERE = Path(__file__).parent
CASES = ("point", "multipoint", "box", "point_box", "mask_point")
TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def reference():
    with np.load(HERE / "sam_tiny_reference.npz") as f:
        return dict(f)


@pytest.fixture(scope="module")
def predictor(reference):
    sam, info = load_sam(HERE / "sam_tiny.pth")
    assert (info.format, info.variant, sam.config) == ("torch", "tiny", CONFIGS["tiny"])
    predictor = SamPredictor(sam)
    predictor.set_image(reference["image"])
    return predictor


def prompts(reference: dict, case: str) -> dict:
    kwargs = {key: reference[f"{case}/{key}"] for key in ("point_coords", "point_labels", "box")
              if f"{case}/{key}" in reference}
    kwargs["multimask_output"] = bool(reference[f"{case}/multimask_output"])
    if case.startswith("mask"):
        kwargs["mask_input"] = reference["mask_input"]
    return kwargs


def test_image_embedding_and_dense_pe(predictor, reference):
    assert predictor.input_size == (192, 256) and predictor.original_size == (60, 80)
    np.testing.assert_allclose(np.asarray(predictor.image_embedding).transpose(0, 3, 1, 2),
                               reference["image_embedding"], **TOL)
    dense_pe = np.asarray(predictor.model.prompt_encoder.dense_pe())
    np.testing.assert_allclose(dense_pe.transpose(2, 0, 1)[None], reference["dense_pe"], **TOL)


@pytest.mark.parametrize("case", CASES)
def test_prompt_embeddings(predictor, reference, case):
    kwargs = prompts(reference, case)
    coords = labels = boxes = masks = None
    if "point_coords" in kwargs:
        coords = jnp.asarray(predictor.transform_coords(kwargs["point_coords"]))[None]
        labels = jnp.asarray(kwargs["point_labels"])[None]
    if "box" in kwargs:
        boxes = jnp.asarray(predictor.transform_coords(kwargs["box"].reshape(2, 2)).reshape(1, 4))
    if "mask_input" in kwargs:
        masks = jnp.asarray(kwargs["mask_input"])
    sparse, dense = predictor.model.prompt_encoder(coords, labels, boxes, masks)
    np.testing.assert_allclose(np.asarray(sparse), reference[f"{case}/sparse"], **TOL)
    if masks is not None:
        np.testing.assert_allclose(np.asarray(dense).transpose(0, 3, 1, 2), reference[f"{case}/dense"], **TOL)


@pytest.mark.parametrize("case", CASES)
def test_predict(predictor, reference, case):
    logits, iou, low_res = predictor.predict(**prompts(reference, case), return_logits=True)
    np.testing.assert_allclose(low_res, reference[f"{case}/low_res"], **TOL)
    np.testing.assert_allclose(iou, reference[f"{case}/iou"], **TOL)
    np.testing.assert_allclose(logits, reference[f"{case}/masks"], **TOL)
    masks = predictor.predict(**prompts(reference, case))[0]
    assert masks.dtype == np.bool_ and masks.shape == logits.shape
    decided = np.abs(reference[f"{case}/masks"]) > 1e-3  # the threshold can flip only within the tolerance
    np.testing.assert_array_equal(masks[decided], reference[f"{case}/masks"][decided] > 0)


def test_batched_prompts_in_one_call(predictor, reference):
    coords = reference["batch/point_coords"]
    logits, iou, low_res = predictor.predict(coords, np.ones((2, 1)), multimask_output=False, return_logits=True)
    assert logits.shape == (2, 1, 60, 80)
    np.testing.assert_allclose(low_res, reference["batch/low_res"], **TOL)
    np.testing.assert_allclose(iou, reference["batch/iou"], **TOL)
    np.testing.assert_allclose(logits, reference["batch/masks"], **TOL)


def test_functional_form_under_jit_and_vmap(predictor, reference):
    """``predict_masks`` as a pure function: jit over the split model, vmap over prompts."""
    graphdef, state = nnx.split(predictor.model)
    coords = jnp.asarray(predictor.transform_coords(reference["batch/point_coords"]))  # (2, 1, 2)

    def one_prompt(state, point):
        sam = nnx.merge(graphdef, state)
        return predict_masks(sam, predictor.image_embedding, point[None], jnp.ones((1, 1), jnp.int32), None, None,
                             multimask_output=False, input_size=predictor.input_size,
                             original_size=predictor.original_size)

    logits, iou, low_res = jax.jit(jax.vmap(one_prompt, in_axes=(None, 0)))(state, coords)
    np.testing.assert_allclose(np.asarray(low_res[:, 0]), reference["batch/low_res"], **TOL)
    np.testing.assert_allclose(np.asarray(iou[:, 0]), reference["batch/iou"], **TOL)
    np.testing.assert_allclose(np.asarray(logits[:, 0]), reference["batch/masks"], **TOL)
