"""Experiment scripts as commands: one-line user errors with exit status 2, run_all carrying
on past a failure, metrics.json recording what ran it, and runs that finish, resume and
rerun without training twice."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

import _common
import ch08_dogs_vs_cats
import ch08_mnist_convnet
import run_all


@pytest.fixture
def broken_dogs_vs_cats(tmp_path):
    """A train/ split whose first cat is not an image."""
    for label in ("cat", "dog"):
        (tmp_path / "train" / label).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "train" / label / "ok.jpg")
    (tmp_path / "train" / "cat" / "a_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return tmp_path


@pytest.mark.parametrize("case", ["missing folder", "undecodable image", "bad flag value", "bad choice"])
def test_a_user_error_is_one_line_and_exit_status_2(case, broken_dogs_vs_cats, tmp_path, monkeypatch, capsys):
    flags, expected = {
        "missing folder": (["--data-dir", str(tmp_path / "nowhere")], f"image directory {tmp_path / 'nowhere'}/train does not exist"),
        "undecodable image": (["--data-dir", str(broken_dogs_vs_cats)], f"cannot decode image file {broken_dogs_vs_cats}/train/cat/a_broken.jpg"),
        "bad flag value": (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
        "bad choice": (["--variant", "huge"], "argument --variant: invalid choice: 'huge'"),
    }[case]
    argv = [*flags, "--out", str(tmp_path / "out"), "--image-size", "80"]
    monkeypatch.setattr(sys, "argv", ["experiments/ch08_dogs_vs_cats.py", *argv])
    with pytest.raises(SystemExit) as exit_:
        _common.run(ch08_dogs_vs_cats.main)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("ch08_dogs_vs_cats.py: error: ") and expected in captured.err
    monkeypatch.setattr(sys, "argv", ["experiments/ch08_dogs_vs_cats.py", *argv, "--debug"])
    with pytest.raises((ValueError, OSError), match="invalid|does not exist|cannot decode"):
        _common.run(ch08_dogs_vs_cats.main)  # --debug: the exception itself, with its traceback


def test_run_all_carries_on_after_a_failure_and_lists_it(monkeypatch, tmp_path):
    import importlib

    def fails(argv):
        raise FileNotFoundError("no MNIST in /nowhere")

    def works(argv):
        return {"test_accuracy": 0.5, "test_foreground_iou": 0.25, "epochs": 1, "image_size": 32}

    for name, module, *_ in run_all.EXPERIMENTS:
        monkeypatch.setattr(importlib.import_module(module), "main", fails if name == "ch08_mnist_convnet" else works)
    rows = run_all.main(["--profile", "quick", "--out", str(tmp_path)])
    assert [r["experiment"] for r in rows] == [e[0] for e in run_all.EXPERIMENTS]
    assert [r["experiment"] for r in rows if "error" in r] == ["ch08_mnist_convnet"]
    table = (tmp_path / "summary.md").read_text()
    assert "| ch08_mnist_convnet | test_accuracy | failed |" in table
    assert "- ch08_mnist_convnet: FileNotFoundError: no MNIST in /nowhere" in table
    assert "| ch09_mini_xception | test_accuracy | 0.5000 |" in table
    assert json.loads((tmp_path / "summary.json").read_text())["rows"][0]["error"].startswith("FileNotFoundError")


def test_a_run_resumes_its_evaluation_finishes_once_and_retrains_only_with_force(tmp_path, monkeypatch, capsys):
    out = tmp_path / "mnist"
    flags = ["--epochs", "1", "--limit", "64", "--batch-size", "32", "--out", str(out)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("killed during the final evaluation")

    monkeypatch.setattr(ch08_mnist_convnet, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ch08_mnist_convnet.main(flags)
    assert "Epoch 1/1" in capsys.readouterr().out
    monkeypatch.undo()

    metrics = ch08_mnist_convnet.main(flags)  # restart: evaluation only, from the kept backup
    printed = capsys.readouterr().out
    assert "Resuming from" in printed and "Epoch 1/1" not in printed
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["history"] == metrics["history"] and len(saved["history"]["loss"]) == 1
    assert not (out / "backup").exists()  # deleted once metrics.json is written
    assert saved["command"] == "python experiments/ch08_mnist_convnet.py " + " ".join(flags)
    assert {"jax", "flax", "optax", "grain", "orbax-checkpoint", "jaxvision"} <= set(saved["versions"])
    assert saved["device"] == _common.device_description()
    assert (out / "log.csv").read_text().count("\n") == 2 and list((out / "logs" / "train").iterdir())

    checkpoint_files = {p: p.stat().st_mtime_ns for p in (out / "checkpoint").rglob("*")}
    again = ch08_mnist_convnet.main(flags)  # finished: nothing is trained or overwritten
    printed = capsys.readouterr().out
    assert "is finished" in printed and "Epoch" not in printed
    assert again["test_accuracy"] == saved["test_accuracy"]
    assert {p: p.stat().st_mtime_ns for p in (out / "checkpoint").rglob("*")} == checkpoint_files

    ch08_mnist_convnet.main([*flags, "--force"])
    assert "Epoch 1/1" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["garbage checkpoint", "non-library error"])
def test_every_error_from_inputs_is_one_line(case, tmp_path, monkeypatch, capsys):
    """Damaged inputs raise library errors of every type (orbax, tensorstore, Pillow…); the
    script still prints one line, naming the type when it is not a ValueError/OSError."""
    import ch10_activations

    if case == "garbage checkpoint":
        step = tmp_path / "ckpt" / "1"
        step.mkdir(parents=True)
        (step / "_CHECKPOINT_METADATA").write_text("{not json")
        (step / "arrays").mkdir()
        (step / "arrays" / "junk").write_bytes(b"\x00" * 64)
        main, argv, expected = ch10_activations.main, ["--checkpoint", str(tmp_path / "ckpt")], "ckpt"
    else:
        def main(argv):
            raise KeyError("weightsManifest")

        argv, expected = [], "KeyError: 'weightsManifest'"
    monkeypatch.setattr(sys, "argv", ["experiments/ch10_activations.py", *argv, "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        _common.run(main)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and expected in err, err
