"""Smoke test of the ch. 10 scripts: each ``main()`` on the checkpoint of a tiny registered
model trained for one epoch with ``ModelCheckpoint``, on tiny images, checking the PNG sizes
and what metrics.json reports; and the default runs on the pretrained ImageNet MobileNet:
Grad-CAM on the book's elephant photo, filters of a shallow layer."""

import json
import sys
from pathlib import Path

import numpy as np
import optax
import pytest
from flax import nnx
from PIL import Image

from jaxvision.layers import Activation, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D, Rescaling
from jaxvision.models import Sequential, build_model, register
from jaxvision.train import ModelCheckpoint, fit

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SIZE = 24  # conv 22 → pool 11 → conv 9
# The two elephants of images/elephant.jpg (650 × 406) as (left, top, right, bottom) boxes read
# off the photo: the mother from her tusk tip to her tail and from her back to her feet, and
# the calf at her side. Together they cover 49% of the photo.
ELEPHANTS = ((80, 68, 465, 352), (450, 185, 595, 335))


@register
def ch10_smoke_convnet(seed: int = 0) -> Sequential:
    rngs = nnx.Rngs(seed)
    return Sequential([Rescaling(1 / 255), Conv2D(3, 4, 3, activation="relu", rngs=rngs), MaxPooling2D(2),
                       Conv2D(4, 6, 3, activation="relu", rngs=rngs), GlobalAveragePooling2D(),
                       Dense(6, 1, activation="sigmoid", rngs=rngs)])


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        import ch10_activations
        import ch10_filters
        import ch10_gradcam

        yield {"activations": ch10_activations, "filters": ch10_filters, "gradcam": ch10_gradcam}
    finally:
        sys.path.remove(str(EXPERIMENTS))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A run folder (checkpoint + metrics.json with the training size) and a Dogs vs Cats
    look-alike test folder of 30×40 JPEGs."""
    root = tmp_path_factory.mktemp("ch10")
    rng = np.random.default_rng(0)
    model = build_model("ch10_smoke_convnet")
    x = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    y = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    checkpoint = root / "run" / "checkpoint"
    fit(model, (x, y), epochs=1, batch_size=4, loss="binary_crossentropy", optimizer=optax.sgd(1e-3),
        callbacks=[ModelCheckpoint(checkpoint, monitor="loss")], verbose=0)
    (root / "run" / "metrics.json").write_text(json.dumps({"image_size": SIZE}))
    for label in ("cat", "dog"):
        (root / "data" / "test" / label).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "data" / "test" / label / f"{label}.{i}.jpg")
    return {"checkpoint": str(checkpoint), "data": str(root / "data"), "out": root / "out"}


def run(scripts, setup, name, *flags):
    out = setup["out"] / name
    metrics = scripts[name].main(["--checkpoint", setup["checkpoint"], "--data-dir", setup["data"],
                                  "--out", str(out), *flags])
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    return out, metrics


def png_size(path):
    with Image.open(path) as png:
        return png.size


def test_activations(scripts, setup):
    out, metrics = run(scripts, setup, "activations")
    assert metrics["image_size"] == SIZE and metrics["image"].endswith("cat/cat.0.jpg")
    assert {name: info["shape"] for name, info in metrics["layers"].items()} == {
        "conv2d": [1, 22, 22, 4], "max_pooling2d": [1, 11, 11, 4], "conv2d_1": [1, 9, 9, 6]}
    assert png_size(out / "input.png") == (SIZE, SIZE)
    # (width, height): channels side by side with 1-pixel gaps.
    assert png_size(out / "activations" / "conv2d.png") == (4 * 23 - 1, 22)
    assert png_size(out / "activations" / "conv2d_1.png") == (6 * 10 - 1, 9)
    # Figure 10.2: channel 5 of the first layer, or its last channel when it has fewer.
    assert metrics["figure_10_2"]["layer"] == "conv2d" and metrics["figure_10_2"]["channel"] == 3
    assert png_size(out / "figure_10_2.png") == (22 * 4, 22 * 4)


def test_filters(scripts, setup):
    out, metrics = run(scripts, setup, "filters", "--num-filters", "4", "--steps", "3", "--crop", "2",
                       "--chunk-size", "3", "--image-size", str(SIZE))
    assert list(metrics["layers"]) == ["conv2d", "conv2d_1"]
    for layer, info in metrics["layers"].items():
        assert info["filters"] == 4 and info["grid"] == 2
        assert png_size(out / f"filters_{layer}.png") == (2 * (SIZE - 4) + 5,) * 2
        assert info["mean_activation_end"] >= info["mean_activation_start"]
    assert metrics["normalize"] == "pixel"
    assert metrics["figure_10_5"] == {"layer": "conv2d_1", "filter": 2, "png": str(out / "figure_10_5.png")}
    assert png_size(out / "figure_10_5.png") == (SIZE - 4, SIZE - 4)


def test_gradcam(scripts, setup):
    out, metrics = run(scripts, setup, "gradcam", "--per-class", "2")
    assert metrics["layer"] == "conv2d_1" and metrics["layer_shape"] == [4, 9, 9, 6]
    assert [Path(r["image"]).name for r in metrics["images"]] == ["cat.0.jpg", "cat.1.jpg", "dog.0.jpg", "dog.1.jpg"]
    for r in metrics["images"]:
        assert r["predicted"] in ("cat", "dog") and 0.5 <= r["probability"] <= 1.0
        assert r["heatmap_shape"] == [9, 9]
        assert png_size(r["overlay"]) == (40, 30)  # the original 40×30 photo, as the book overlays
        assert png_size(r["png"]) == (40, 30 + 30)


def test_gradcam_default_layer_skips_a_one_by_one_map(scripts, setup):
    """At 8 px the last conv's map is 1 × 1 (conv 6 → pool 3 → conv 1), where Grad-CAM is
    uniform: the default is the pooling layer before it, and choosing the 1 × 1 layer warns."""
    flags = ["--checkpoint", setup["checkpoint"], "--data-dir", setup["data"], "--per-class", "1",
             "--image-size", "8"]
    metrics = scripts["gradcam"].main([*flags, "--out", str(setup["out"] / "gradcam_8px")])
    assert metrics["layer"] == "max_pooling2d" and metrics["layer_shape"] == [2, 3, 3, 4]
    with pytest.warns(UserWarning, match=r"Grad-CAM on layer 'conv2d_1', whose output is 1 × 1 .* uniform"):
        metrics = scripts["gradcam"].main([*flags, "--layer", "conv2d_1", "--out", str(setup["out"] / "gradcam_1x1")])
    assert [r["heatmap_shape"] for r in metrics["images"]] == [[1, 1], [1, 1]]


@pytest.mark.parametrize("score, mass_on_elephants", [("probability", 0.52), ("logit", 0.6)])
def test_gradcam_of_the_pretrained_mobilenet_puts_its_mass_on_the_elephants(scripts, tmp_path, capsys, score,
                                                                            mass_on_elephants):
    metrics = scripts["gradcam"].main(["--score", score, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    # Keras 3 with the same weights and the same Pillow-bilinear 224-px input: 0.609, 0.260, 0.130.
    assert "elephant.jpg: African_elephant 0.609, Indian_elephant 0.260, tusker 0.130, " in printed
    assert "elephant.jpg: argmax index 386\n" in printed  # the book's np.argmax(preds[0]): African elephant
    assert metrics["layer"] == "conv_pw_13_relu" and metrics["layer_shape"] == [1, 7, 7, 768]
    assert metrics["score"] == score
    (result,) = metrics["images"]
    assert len(result["top"]) == 5 and result["argmax"] == 386  # the book prints the top 5
    assert [name for _, name, _ in result["top"][:3]] == ["African_elephant", "Indian_elephant", "tusker"]
    assert png_size(result["overlay"]) == (650, 406) and png_size(result["heatmap_png"]) == (7 * 32, 7 * 32)
    heatmap = np.array(result["heatmap"], np.float32)
    assert heatmap.shape == (7, 7) and heatmap.max() == 1.0
    # The heatmap over the photo as the overlay draws it (bilinear to the photo's size).
    mass = np.asarray(Image.fromarray(heatmap).resize((650, 406), Image.Resampling.BILINEAR))
    on_elephants = np.zeros((406, 650), bool)
    for left, top, right, bottom in ELEPHANTS:
        on_elephants[top:bottom, left:right] = True
    assert on_elephants.mean() == pytest.approx(0.488, abs=1e-3)
    # Measured: 0.529 for the probability (the book's score), 0.648 for the logit.
    assert mass[on_elephants].sum() / mass.sum() > mass_on_elephants
    peak = np.unravel_index(mass.argmax(), mass.shape)
    assert on_elephants[peak]


def test_filters_of_the_pretrained_mobilenet(scripts, tmp_path):
    """The book's grid by default: 64 filters, 8 × 8."""
    metrics = scripts["filters"].main(["--layer", "conv_pw_2", "--steps", "1", "--image-size", "32", "--crop", "4",
                                       "--out", str(tmp_path)])
    info = metrics["layers"]["conv_pw_2"]
    assert metrics["checkpoint"] is None and info["filters"] == 64 and info["grid"] == 8
    assert png_size(tmp_path / "filters_conv_pw_2.png") == (8 * (32 - 8) + 7 * 5,) * 2
    assert info["mean_activation_end"] > info["mean_activation_start"]


def stand_in_xception(calls):
    """Records how the scripts build the book's Xception and returns a small model with the
    layer names they use (the real file loading is tests/weights/test_xception_import.py's).
    Its kernels have the shapes of ``ch10_smoke_convnet``'s, whose initialisers are compiled."""
    rngs = nnx.Rngs(0)
    convs = [("block1_conv1", Conv2D(3, 4, 3, padding="same", activation="relu", rngs=rngs)),
             ("block3_sepconv1", Conv2D(4, 6, 3, padding="same", rngs=rngs)),
             ("block14_sepconv2_act", Activation("relu"))]
    top = [("avg_pool", GlobalAveragePooling2D()), ("predictions", Dense(6, 1000, activation="softmax", rngs=rngs))]

    def build(weights=None, include_top=True, classifier_activation="softmax"):
        calls.append({"weights": weights, "include_top": include_top, "classifier_activation": classifier_activation})
        return Sequential(convs + (top if include_top else []))

    return build


def test_every_script_takes_the_books_xception(scripts, setup, tmp_path, monkeypatch, capsys):
    import jaxvision.applications

    calls, weights = [], tmp_path / "xception_weights_tf_dim_ordering_tf_kernels.h5"
    monkeypatch.setattr(jaxvision.applications, "Xception", stand_in_xception(calls))
    flags = ["--backbone", "xception", "--weights", str(weights), "--image-size", "16"]
    gradcam = scripts["gradcam"].main([*flags, "--out", str(tmp_path / "gradcam")])
    assert gradcam["layer"] == "block14_sepconv2_act" and gradcam["model"] == f"Xception(weights='{weights}')"
    (result,) = gradcam["images"]
    assert len(result["top"]) == 5 and f"elephant.jpg: argmax index {result['argmax']}" in capsys.readouterr().out
    filters = scripts["filters"].main([*flags, "--layer", "block3_sepconv1", "--num-filters", "3", "--steps", "1",
                                       "--crop", "1",
                                       "--out", str(tmp_path / "filters")])
    assert filters["figure_10_5"] == {"layer": "block3_sepconv1", "filter": 2,  # as the book's figure 10.5
                                      "png": str(tmp_path / "filters" / "figure_10_5.png")}
    activations = scripts["activations"].main([*flags, "--data-dir", setup["data"], "--layer", "block1_conv1",
                                               "--out", str(tmp_path / "activations")])
    assert activations["checkpoint"] is None and activations["layers"]["block1_conv1"]["shape"] == [1, 16, 16, 4]
    assert activations["model"] == f"Xception(weights='{weights}')"
    assert calls == [{"weights": weights, "include_top": True, "classifier_activation": "softmax"},
                     *[{"weights": weights, "include_top": False, "classifier_activation": "softmax"}] * 2]


@pytest.mark.parametrize("flags, match", [
    (["--backbone", "xception"], "--backbone xception needs --weights PATH"),
    (["--weights", "w.h5"], "--weights needs --backbone"),
    (["--backbone", "mobilenet", "--checkpoint", "run/checkpoint"], "pass one model, not both"),
])
def test_backbone_flag_errors_are_named(scripts, flags, match):
    for script in scripts.values():
        with pytest.raises(ValueError, match=match):
            script.main([*flags, "--out", "unused"])
