"""One-epoch smoke runs of the chapter 8, 9 and 11 experiments on a few tiny images: each
writes metrics.json with a real score, curves and a checkpoint that reloads."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flax import nnx
from PIL import Image

import ch08_dogs_vs_cats
import ch08_mnist_convnet
import ch08_pretrained
import ch09_mini_xception
import ch09_residual_blocks
import ch11_segmentation
import run_all
from jaxvision.layers import Activation, BatchNormalization, Conv2D
from jaxvision.models import Sequential
from jaxvision.train import restore
from jaxvision.train.checkpoint import flat_arrays


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
    if script is not ch09_residual_blocks:  # listing 8.18's augmentation mapped over the batches, as the book does
        assert metrics["augmentation"] == (None if "scratch" in flags else "pipeline")


def png_size(path):
    with Image.open(path) as png:
        return png.size


@pytest.mark.parametrize("variant, figures", [("scratch", ["figure_8_8.png"]),
                                              ("augmented", ["figure_8_10.png", "figure_8_8.png"])])
def test_the_books_figures_8_8_and_8_10(dogs_vs_cats, tmp_path, variant, figures):
    metrics = ch08_dogs_vs_cats.main(["--variant", variant, "--data-dir", str(dogs_vs_cats), "--figures-only",
                                      "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == figures == sorted(Path(f).name for f in metrics["figures"])
    assert png_size(tmp_path / "figure_8_8.png") == (12 * 80, int((3 * 2 + 0.3) * 80))  # 2 rows of 4, titled
    if variant == "augmented":
        assert png_size(tmp_path / "figure_8_10.png") == (9 * 80, 9 * 80)  # 3 × 3 tiles


def tiny_backbone(args):
    """Stands in for the ImageNet backbone (whose loading the applications tests cover): a conv
    and a BatchNorm whose statistics are not at their initial values, so freezing shows."""
    base = Sequential([Conv2D(3, 4, 3, strides=2, use_bias=False, rngs=nnx.Rngs(7)), BatchNormalization(4, rngs=nnx.Rngs(0)),
                       Activation("relu")])
    base.batch_normalization.moving_mean[...] += 0.5
    base.preprocessing_mode = "tf"  # as MobileNet's: the experiment puts x / 127.5 - 1 before it
    return base


def test_pretrained_experiment_variants_freeze_and_fine_tune(dogs_vs_cats, tmp_path, monkeypatch):
    monkeypatch.setattr(ch08_pretrained, "backbone", tiny_backbone)
    flags = ["--data-dir", str(dogs_vs_cats), "--epochs", "1", "--batch-size", "4", "--image-size", "20",
             "--profile", "quick"]
    runs = {}
    for variant in ("features", "augmented", "finetune"):
        out = tmp_path / variant
        runs[variant] = ch08_pretrained.main([*flags, "--variant", variant, "--out", str(out),
                                              "--from", str(tmp_path / "augmented" / "checkpoint")])
        check_run(out, runs[variant], "test_accuracy")
        assert runs[variant]["test_images"] == 8 and runs[variant]["variant"] == variant
    head = 4 * 256 + 256 + 256 + 1
    assert runs["features"]["trainable_params"] == head
    assert (runs["augmented"]["trainable_params"], runs["augmented"]["non_trainable_params"]) == (head, 27 * 4 + 16)
    assert (runs["finetune"]["trainable_params"], runs["finetune"]["non_trainable_params"]) == (head + 27 * 4, 16)

    def weights(model):
        return {k: np.asarray(v) for k, v in flat_arrays(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))).items()}

    def backbone_weights(checkpoint):
        model = restore(checkpoint, ch08_pretrained.classifier(SimpleNamespace(seed=0, image_size=20)))
        return {k: v for k, v in weights(model).items() if k.startswith("backbone/")}

    initial = {f"backbone/{k}": v for k, v in weights(tiny_backbone(None)).items()}
    augmented = backbone_weights(tmp_path / "augmented" / "checkpoint")
    finetuned = backbone_weights(tmp_path / "finetune" / "checkpoint")
    for name, value in initial.items():  # the frozen backbone, BatchNorm statistics included
        np.testing.assert_array_equal(augmented[name], value, err_msg=name)
    for name in initial:  # fine-tuning trains the conv and leaves BatchNorm alone
        changed = not np.array_equal(finetuned[name], augmented[name])
        assert changed == (name == "backbone/conv2d/kernel"), name


def test_pretrained_experiment_trains_a_modern_backbone_from_scratch(dogs_vs_cats, tmp_path, monkeypatch):
    """``--backbone efficientnet_b0 --weights none``: the registry's backbone, not frozen, and no
    preprocessing layer (EfficientNet rescales pixels itself); the other variants refuse it."""
    built = []

    def registry_backbone(name, **kwargs):
        built.append((name, kwargs))
        base = tiny_backbone(None)
        del base.preprocessing_mode  # a family that rescales inside the model
        return base

    monkeypatch.setattr(ch08_pretrained, "build_model", registry_backbone)
    flags = ["--data-dir", str(dogs_vs_cats), "--epochs", "1", "--batch-size", "4", "--image-size", "20",
             "--profile", "quick", "--backbone", "efficientnet_b0", "--weights", "none"]
    metrics = ch08_pretrained.main([*flags, "--variant", "augmented", "--out", str(tmp_path / "scratch")])
    check_run(tmp_path / "scratch", metrics, "test_accuracy")
    assert built == [("efficientnet_b0", {"include_top": False})]
    assert metrics["backbone_weights"] == "none (from scratch)" and metrics["backbone"] == "efficientnet_b0"
    head = 4 * 256 + 256 + 256 + 1
    assert (metrics["trainable_params"], metrics["non_trainable_params"]) == (head + 27 * 4 + 8, 8)
    model = ch08_pretrained.classifier(SimpleNamespace(seed=0, image_size=20, backbone="efficientnet_b0",
                                                       weights="none"))
    assert "preprocessing" not in model.layer_names and model.backbone.trainable_weights
    for variant in ("features", "finetune"):
        with pytest.raises(ValueError, match="--weights none trains the backbone from scratch"):
            ch08_pretrained.main([*flags, "--variant", variant, "--out", str(tmp_path / variant)])
    with pytest.raises(ValueError, match="--backbone convnext_tiny needs --weights PATH"):
        ch08_pretrained.backbone(SimpleNamespace(backbone="convnext_tiny", weights=None))
    assert {"mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "convnext_tiny",
            "nasnet_mobile"} <= set(ch08_pretrained.modern_backbones())


def test_end_to_end_head_is_linear_and_the_feature_head_uses_relu(monkeypatch):
    """The book's end-to-end model has ``Dense(256)`` without activation; listing 8.26's
    feature-extraction head has ``Dense(256, activation="relu")``."""
    monkeypatch.setattr(ch08_pretrained, "backbone", tiny_backbone)
    end_to_end = ch08_pretrained.classifier(SimpleNamespace(seed=0, image_size=20))
    features = Sequential(ch08_pretrained.head(4, nnx.Rngs(0)))
    assert (end_to_end.dense.activation, features.dense.activation) == (None, "relu")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    linear = np.asarray(end_to_end.dense(x))
    np.testing.assert_allclose(linear, x @ np.asarray(end_to_end.dense.kernel) + np.asarray(end_to_end.dense.bias),
                               rtol=1e-5, atol=1e-5)
    assert (linear < 0).any() and (np.asarray(features.dense(x)) >= 0).all()


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
    # The constant-mask baseline is recorded beside the model's IoU.
    assert 0.0 <= metrics["baseline_test_foreground_iou"] <= 1.0 and 0.0 < metrics["baseline_threshold"] <= 1.0
    assert metrics["iou_over_baseline"] == pytest.approx(metrics["test_foreground_iou"]
                                                         - metrics["baseline_test_foreground_iou"])
    with Image.open(out / "predictions.png") as grid:
        assert grid.width > grid.height  # image, true mask, prediction and baseline side by side


def test_the_books_figures_11_3_and_11_4(pet_layout, tmp_path):
    metrics = ch11_segmentation.main(["--data-dir", str(pet_layout), "--figures-only", "--out", str(tmp_path)])
    assert [Path(f).name for f in metrics["figures"]] == ["figure_11_3.png", "figure_11_4.png"]
    with Image.open(tmp_path / "figure_11_3.png") as photo, Image.open(tmp_path / "figure_11_4.png") as mask:
        assert photo.size == mask.size == (44, 36) and mask.mode == "L"
        grey = np.asarray(mask)
    # The last of the six sorted pets (there is no tenth): foreground 0, background 127, outline 254.
    assert grey[18, 20] == 0 and grey[0, 0] == 127 and grey[9, 11] == 254
    with Image.open(pet_layout / "annotations" / "trimaps" / "pet5.png") as png:
        trimap = np.asarray(png)
    np.testing.assert_array_equal(grey, (trimap.astype(int) - 1) * 127)


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
