"""One-epoch smoke runs of the chapter 8, 9 and 11 experiments on a few tiny images: each
writes metrics.json with a real score, curves and a checkpoint that reloads."""

import json

import numpy as np
import pytest
from PIL import Image

import ch08_dogs_vs_cats
import ch08_mnist_convnet
import ch09_mini_xception
import ch09_residual_blocks
import ch11_segmentation
import run_all


@pytest.fixture(scope="module")
def dogs_vs_cats(tmp_path_factory):
    """train/validation/test folders of 4 cats (dark) and 4 dogs (bright) each, 40×40 JPEGs."""
    root = tmp_path_factory.mktemp("dogs_vs_cats")
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for label, level in (("cat", 40), ("dog", 200)):
            (root / split / label).mkdir(parents=True)
            for i in range(4):
                pixels = np.clip(level + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{label}.{i}.jpg")
    return root


@pytest.fixture(scope="module")
def pet_layout(tmp_path_factory):
    """Six 36×44 photos with trimaps in the Oxford-IIIT Pet layout, split 4 trainval / 2 test."""
    root = tmp_path_factory.mktemp("pets")
    (root / "images").mkdir()
    (root / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(1)
    stems = [f"pet{i}" for i in range(6)]
    for stem in stems:
        trimap = np.full((36, 44), 2, np.uint8)
        trimap[8:28, 10:30] = 3
        trimap[10:26, 12:28] = 1
        photo = np.where((trimap == 1)[..., None], 220, 30) + rng.integers(0, 20, (36, 44, 3))
        Image.fromarray(photo.astype(np.uint8)).save(root / "images" / f"{stem}.jpg")
        Image.fromarray(trimap).save(root / "annotations" / "trimaps" / f"{stem}.png")
    (root / "annotations" / "trainval.txt").write_text("".join(f"{s} 1 1 1\n" for s in stems[:4]))
    (root / "annotations" / "test.txt").write_text("".join(f"{s} 1 1 1\n" for s in stems[4:]))
    return root


def check_run(out, metrics, key):
    saved = json.loads((out / "metrics.json").read_text())
    assert saved[key] == pytest.approx(metrics[key])
    assert 0.0 <= saved[key] <= 1.0
    assert len(saved["history"]["loss"]) == saved["epochs"] == 1
    assert (out / "curves_loss.png").stat().st_size > 0
    assert (out / "checkpoint").is_dir() and not (out / "backup").exists()
    assert {"jax", "flax", "optax", "grain", "orbax-checkpoint", "jaxvision"} <= set(saved["versions"])
    assert saved["command"].startswith("python experiments/") and saved["device"]
    assert (out / "log.csv").is_file() and (out / "logs" / "validation").is_dir() == ("val_loss" in saved["history"])


@pytest.mark.parametrize("script, flags", [
    (ch08_dogs_vs_cats, ["--variant", "scratch", "--image-size", "80"]),
    (ch08_dogs_vs_cats, ["--variant", "augmented", "--image-size", "80"]),
    (ch09_mini_xception, ["--image-size", "48"]),
    (ch09_residual_blocks, ["--policy", "mixed_bfloat16", "--image-size", "32"]),
])
def test_dogs_vs_cats_experiments_run_one_epoch(script, flags, dogs_vs_cats, tmp_path):
    out = tmp_path / "run"
    metrics = script.main([*flags, "--data-dir", str(dogs_vs_cats), "--epochs", "1", "--batch-size", "4",
                           "--out", str(out), "--profile", "quick"])
    check_run(out, metrics, "test_accuracy")
    assert metrics["test_images"] == 8 and metrics["image_size"] == int(flags[-1])
    policy = "mixed_bfloat16" if "--policy" in flags else "float32"
    assert json.loads((out / "metrics.json").read_text())["policy"] == policy


def test_mnist_experiment_runs_on_a_slice(tmp_path):
    out = tmp_path / "mnist"
    metrics = ch08_mnist_convnet.main(["--epochs", "1", "--limit", "256", "--out", str(out)])
    check_run(out, metrics, "test_accuracy")
    assert metrics["train_images"] == 256


@pytest.mark.parametrize("variant", ["book", "improved"])
def test_segmentation_experiment_runs_one_epoch(variant, pet_layout, tmp_path):
    out = tmp_path / variant
    metrics = ch11_segmentation.main(["--data-dir", str(pet_layout), "--image-size", "32", "--epochs", "1",
                                      "--batch-size", "2", "--out", str(out), "--variant", variant])
    check_run(out, metrics, "test_foreground_iou")
    assert 0.0 <= metrics["test_mean_iou"] <= 1.0
    assert metrics["test_images"] == 2 and metrics["train_images"] == 3
    with Image.open(out / "predictions.png") as grid:
        assert grid.width > grid.height  # image, true mask and prediction side by side


def test_run_all_writes_one_summary_table(monkeypatch, tmp_path):
    calls = []

    def fake_main(argv):
        calls.append(argv)
        return {"test_accuracy": 0.5, "test_foreground_iou": 0.25, "epochs": 1, "image_size": 32}

    import importlib
    for name, module, *_ in run_all.EXPERIMENTS:
        monkeypatch.setattr(importlib.import_module(module), "main", fake_main)
    rows = run_all.main(["--profile", "quick", "--out", str(tmp_path)])
    assert [r["experiment"] for r in rows] == [e[0] for e in run_all.EXPERIMENTS]
    assert all("--profile" in argv for argv, e in zip(calls, run_all.EXPERIMENTS) if e[0] not in run_all.INTERPRET)
    table = (tmp_path / "summary.md").read_text()
    assert "| ch08_mnist_convnet | test_accuracy | 0.5000 | 0.991 |" in table
    assert "| ch11_segmentation | test_foreground_iou | 0.2500 |" in table
