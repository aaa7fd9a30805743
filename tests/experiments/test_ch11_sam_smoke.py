"""Smoke test of experiments/ch11_sam.py with the tiny random checkpoint of the parity tests:
the missing-checkpoint message, one photo with point + box prompts, and the horse-set score."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY = Path(__file__).resolve().parents[1] / "models" / "segment_anything" / "sam_tiny.pth"


@pytest.fixture(scope="module")
def ch11_sam():
    import ch11_sam  # experiments/ is on pytest's pythonpath (pyproject.toml)

    return ch11_sam


def test_without_checkpoint_names_the_files(ch11_sam):
    with pytest.raises(ch11_sam._common.UsageError) as exit_info:
        ch11_sam.main([])
    message = str(exit_info.value)
    assert "\n" not in message
    for expected in ("sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth", "MD5 prefixes",
                     "dl.fbaipublicfiles.com/segment_anything", "facebook/sam-vit", "model.weights.h5"):
        assert expected in message


def test_photo_with_point_and_box(ch11_sam, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    out = tmp_path / "run"
    # one point and a box: the same token count as the parity tests' point + box, so no new decoder compile
    metrics = ch11_sam.main(["--checkpoint", str(TINY), "--image", str(tmp_path / "photo.png"), "--point", "30,20",
                             "--label", "0", "--box", "10,8,60,40", "--out", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["variant"] == "tiny" and saved["sha256"].startswith("ea9f441a") and saved["release"] is None
    assert saved["points"] == [[30.0, 20.0]] and saved["labels"] == [0]
    assert saved["box"] == [10.0, 8.0, 60.0, 40.0] and len(saved["predicted_iou"]) == 3
    assert saved == json.loads(json.dumps(metrics))
    for figure in ("prompt_mask.png", "candidates.png"):
        with Image.open(out / figure) as img:
            assert img.format == "PNG" and img.width > 300


def test_horse_set_scores_a_centroid_point(ch11_sam, tmp_path):
    metrics = ch11_sam.main(["--checkpoint", str(TINY), "--limit", "1", "--out", str(tmp_path)])
    (row,) = metrics["per_image"]
    assert metrics["images"] == 1 and metrics["split"] == "test"
    assert 0.0 <= row["foreground_iou_best"] <= 1.0 and 0.0 <= row["foreground_iou_single"] <= 1.0
    assert metrics["mean_foreground_iou_best_of_3"] == row["foreground_iou_best"]
    with Image.open(Path(metrics["data_dir"]) / "annotations" / "trimaps" / f"{row['stem']}.png") as t:
        classes = np.asarray(t).astype(int) - 1
    x, y = row["point"]
    assert classes[int(y), int(x)] == 0  # the prompt sits on the horse


def test_prompt_flags_are_checked(ch11_sam):
    with pytest.raises(ch11_sam._common.UsageError, match="2 --point but 1 --label"):
        ch11_sam.main(["--checkpoint", str(TINY), "--image", str(TINY), "--point", "1,2", "--point", "3,4",
                       "--label", "1"])
    with pytest.raises(ch11_sam._common.UsageError, match=r"--box expects 4 comma-separated numbers, got '1,2,3'"):
        ch11_sam.main(["--checkpoint", str(TINY), "--image", str(TINY), "--box", "1,2,3"])


def test_centroid_point_and_foreground_iou(ch11_sam):
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False  # centroid (4, 4) is a hole: the nearest mask pixel is used instead
    (x, y), = ch11_sam.centroid_point(ring)
    assert ring[int(y), int(x)] and abs(x - 4) + abs(y - 4) == 2
    classes = np.array([[0, 0, 1, 2]])
    assert ch11_sam.foreground_iou(np.array([[True, False, True, True]]), classes) == pytest.approx(1 / 3)


def test_the_books_figures_11_9_to_11_15(ch11_sam, tmp_path):
    metrics = ch11_sam.main(["--checkpoint", str(TINY), "--book-figures", "--out", str(tmp_path)])
    names = [f"figure_11_{n}.png" for n in range(9, 16)]
    assert [Path(f).name for f in metrics["figures"]] == names
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(names)
    assert metrics["image"].endswith("cheetah.jpg") and "random test weights" in metrics["drawn_by"]
    keys = ("point", "second_point", "second_point_candidates", "box")
    assert [len(metrics["predicted_iou"][k]) for k in keys] == [1, 1, 3, 1]
    with Image.open(tmp_path / "figure_11_9.png") as figure:
        assert figure.size == (600, 670)  # a square image under two title lines
    with Image.open(tmp_path / "figure_11_12.png") as mask, Image.open(tmp_path / "figure_11_13.png") as candidates:
        assert mask.size == (600, 670) and candidates.size[0] == 3 * 400  # one mask; the three alternatives
