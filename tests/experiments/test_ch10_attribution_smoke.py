"""Smoke test of experiments/ch10_attribution.py: every method, its scores, the grid and the
randomisation check on the real elephant and cheetah photos, with a tiny stand-in for the
ImageNet MobileNet (its layer names; the real one is test_ch10_smoke.py's and the RESULTS.md run's)."""

import json
from pathlib import Path

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D
from jaxvision.models import Sequential

SIZE = 14  # conv 14 → pool 7 → conv 7: the CAM layer is 7 × 7, as the MobileNet's at 224


@pytest.fixture(scope="module")
def ch10_attribution():
    import ch10_attribution  # experiments/ is on pytest's pythonpath (pyproject.toml)

    return ch10_attribution


def stand_in_mobilenet(classifier_activation="softmax"):
    rngs = nnx.Rngs(0)
    return Sequential([("conv1", Conv2D(3, 4, 3, padding="same", activation="relu", rngs=rngs)),
                       ("pool", MaxPooling2D(2)),
                       ("conv_pw_13_relu", Conv2D(4, 6, 3, padding="same", activation="relu", rngs=rngs)),
                       ("global_average_pooling2d", GlobalAveragePooling2D()),
                       ("predictions", Dense(6, 1000, activation=classifier_activation, rngs=rngs))])


def test_a_cam_and_two_attributions_are_scored_and_drawn(ch10_attribution, monkeypatch, tmp_path):
    """Three of the fourteen methods (each is its own compilation): a CAM, a path and a
    perturbation method; the methods themselves are tests/interpret's."""
    monkeypatch.setattr(ch10_attribution._ch10, "pretrained_mobilenet", stand_in_mobilenet)
    methods = ["grad_cam", "integrated_gradients", "occlusion"]
    metrics = ch10_attribution.main(["--profile", "quick", "--image-size", str(SIZE), "--steps", "2",
                                     "--ig-steps", "2", *(f"--method={m}" for m in methods), "--out", str(tmp_path)])
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["profile"] == "quick" and metrics["road_percentiles"] == [50.0] and metrics["ig_steps"] == 2
    assert [Path(p).name for p in metrics["images"]] == ["elephant.jpg", "cheetah.jpg"]
    assert list(metrics["scores"]) == methods
    for scores in metrics["scores"].values():
        for key in ("deletion_auc", "insertion_auc"):
            assert len(scores[key]) == 2 and all(0 <= v <= 1 for v in scores[key])
        assert len(scores["road_combined"]) == 2 and np.isfinite(scores["road_combined"]).all()
    assert np.isfinite(metrics["integrated_gradients_completeness_error"]).all()
    assert metrics["sanity_grad_cam_spearman"] == {}  # the quick profile skips it
    with Image.open(tmp_path / "grid.png") as grid:  # 2.2-inch cells at 80 dpi: 2 images × 3 methods
        assert grid.size == (352, 528)
