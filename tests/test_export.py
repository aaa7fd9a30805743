"""jaxvision.export: the command writes a model that runs with only jax and numpy (the README's
lines, in a fresh process where importing jaxvision, flax or keras fails) and gives predict's
outputs; the loader refuses tampered folders with named errors."""

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxvision.export import ExportError, export_model, load_exported
from jaxvision.models import build_model
from jaxvision.train import predict, save_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"
# Run first in the fresh process: these imports must not be needed.
BLOCK_IMPORTS = """import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jaxvision", "flax", "keras", "optax", "orbax", "grain"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Blocked())
"""


def readme_snippet() -> str:
    (code,) = re.findall(r"```python exported\n(.*?)```", README.read_text(), flags=re.S)
    return code


def run_readme_snippet(runs: dict[Path, np.ndarray]) -> dict[Path, np.ndarray]:
    """The README's lines on each exported folder, in one new interpreter where jaxvision, flax
    and keras cannot be imported, then on the given inputs instead of zeros."""
    code = BLOCK_IMPORTS
    for i, (folder, inputs) in enumerate(runs.items()):
        np.save(folder / "inputs.npy", inputs)
        snippet = readme_snippet().replace('folder = "exported/"', f'folder = "{folder}/"')
        assert f'folder = "{folder}/"' in snippet
        code += (snippet + "assert outputs.shape[0] == 2\n"
                 + "np.save(folder + 'outputs.npy', np.asarray(model.call(weights, np.load(folder + 'inputs.npy'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {folder: np.load(folder / "outputs.npy") for folder in runs}


def export_command(checkpoint: Path, out: Path, *flags: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "jaxvision.export", str(checkpoint), str(out), *flags],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"wrote {out}: input ")
    return json.loads((out / "contract.json").read_text())


def contract(folder: Path) -> dict:
    return json.loads((folder / "contract.json").read_text())


def test_a_book_model_the_segmenter_and_mobilenet_run_with_only_jax_and_numpy(tmp_path):
    from PIL import Image

    from jaxvision.applications import MobileNet
    from jaxvision.data import data_root
    from jaxvision.export import export_checkpoint

    rng = np.random.default_rng(0)
    # The mini-Xception (BatchNorm statistics and Dropout) with non-trivial statistics, through the command.
    xception = build_model("mini_xception", augmented=False, seed=3)
    xception.block1_bn1.moving_mean[...] = rng.normal(size=32).astype(np.float32)
    save_checkpoint(tmp_path / "xception", xception)
    (tmp_path / "metrics.json").write_text(json.dumps({"image_size": 64}))  # as the training scripts record it
    book = export_command(tmp_path / "xception", tmp_path / "xception_out", "--class-names", "cat,dog")
    assert book["input"] == {"shape": [None, 64, 64, 3], "dtype": "float32"}
    assert book["output"]["shape"] == [None, 1] and book["class_names"] == ["cat", "dog"]
    assert book["platforms"] == ["cpu", "cuda", "tpu"] and book["model"]["name"] == "mini_xception"
    assert book["preprocessing"].startswith("none: RGB pixels in [0, 255]")
    # The segmenter through the Python function; its size comes from its build config.
    segmenter = build_model("segmentation_model", image_size=[48, 48], seed=1)
    save_checkpoint(tmp_path / "segmenter", segmenter)
    export_checkpoint(tmp_path / "segmenter", tmp_path / "segmenter_out", platforms=("cpu",))
    assert contract(tmp_path / "segmenter_out")["output"]["shape"] == [None, 48, 48, 3]
    # MobileNet with its ImageNet head, and the elephant.
    mobilenet = MobileNet(alpha=0.75, weights="imagenet")
    export_model(mobilenet, tmp_path / "mobilenet_out", input_shape=(224, 224, 3), platforms=("cpu",))
    imagenet = contract(tmp_path / "mobilenet_out")
    assert imagenet["preprocessing"].startswith("x / 127.5 - 1") and len(imagenet["class_names"]) == 1000
    with Image.open(data_root() / "images" / "elephant.jpg") as img:
        photo = np.asarray(img.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)

    runs = {tmp_path / "xception_out": (xception, rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)),
            tmp_path / "segmenter_out": (segmenter, rng.uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)),
            # preprocessed as the contract says; a batch size the export never saw
            tmp_path / "mobilenet_out": (mobilenet, np.stack([photo, photo[:, ::-1]]) / np.float32(127.5) - 1)}
    outputs = run_readme_snippet({folder: x for folder, (_, x) in runs.items()})
    for folder, (model, x) in runs.items():
        np.testing.assert_allclose(outputs[folder], predict(model, x), rtol=1e-6, atol=1e-6, err_msg=str(folder))
        load_exported(folder)  # and each passes the loader's checks: its operations are all in ALLOWED_OPS
    elephant = outputs[tmp_path / "mobilenet_out"]
    assert [imagenet["class_names"][i] for i in elephant.argmax(-1)] == ["African_elephant"] * 2
    assert elephant[0].max() == pytest.approx(0.6089, abs=1e-4)


def test_the_class_names_must_match_the_outputs(tmp_path):
    with pytest.raises(ValueError, match=r"export_model: 3 class_names for 10 outputs"):
        export_model(build_model("mnist_convnet"), tmp_path, input_shape=(28, 28, 1), platforms=("cpu",),
                     class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"platforms must be a non-empty subset of \('cpu', 'cuda', 'tpu'\)"):
        export_model(build_model("mnist_convnet"), tmp_path, input_shape=(28, 28, 1), platforms=("rocm",))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    model = build_model("mnist_convnet")
    export_model(model, out, input_shape=(28, 28, 1), platforms=("cpu",))
    return out, model


def test_load_exported_runs_any_batch_and_checks_the_input(exported):
    folder, model = exported
    x = np.random.default_rng(1).uniform(0, 1, (5, 28, 28, 1)).astype(np.float32)
    run = load_exported(folder)
    np.testing.assert_allclose(run(x), predict(model, x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 28, 28, 1\), got \(5, 28, 28\)"):
        run(x[..., 0])


def tampered(exported, tmp_path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("model.jax", "weights.npz", "contract.json"):
        (folder / name).write_bytes((exported[0] / name).read_bytes())
    return folder


def rewrite_weights(folder: Path, change) -> None:
    """Replace weights.npz by ``change(dict)`` and record its sha256, so only the change is wrong."""
    import hashlib

    weights = dict(np.load(folder / "weights.npz"))
    buffer = io.BytesIO()
    np.savez(buffer, **change(weights))
    (folder / "weights.npz").write_bytes(buffer.getvalue())
    contract = json.loads((folder / "contract.json").read_text())
    contract["weights"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / "contract.json").write_text(json.dumps(contract))


def edit_contract(folder: Path, **changes) -> None:
    contract = json.loads((folder / "contract.json").read_text())
    (folder / "contract.json").write_text(json.dumps({**contract, **changes}))


def pickled_object_array(folder: Path) -> None:
    rewrite_weights(folder, lambda w: {**w, "dense/kernel": np.array([{"x": 1}], dtype=object)})


@pytest.mark.parametrize("attack, match", [
    (lambda f: (f / "weights.npz").write_bytes((f / "weights.npz").read_bytes()[:-10]),
     r"weights.npz: sha256 differs from the contract's"),
    (lambda f: rewrite_weights(f, lambda w: {("conv2d/kernel2" if k == "conv2d/kernel" else k): v for k, v in w.items()}),
     r"weights.npz: weight names do not match model.jax's signature; missing \['conv2d/kernel'\], "
     r"unexpected \['conv2d/kernel2'\]"),
    (lambda f: rewrite_weights(f, lambda w: {**w, "conv2d/bias": np.zeros(65, np.float32)}),
     r"weights.npz: conv2d/bias is float32\[65\], model.jax takes float32\[64\]"),
    (pickled_object_array, r"weights.npz: not a weights archive of plain arrays .*allow_pickle"),
    (lambda f: edit_contract(f, input={"shape": [None, 32, 32, 1], "dtype": "float32"}),
     r"contract.json: input.shape \[None, 32, 32, 1\] does not match model.jax's input \(b, 28, 28, 1\)"),
    (lambda f: edit_contract(f, input={"shape": [4, 28, 28, 1]}), r"contract.json: input.shape must be \[null"),
    (lambda f: edit_contract(f, format="other/1"), r"contract.json: not a jaxvision.export/1 contract"),
    (lambda f: (f / "contract.json").write_text("{"), r"contract.json: not JSON"),
    (lambda f: (f / "model.jax").write_bytes(b"\x00" * 64), r"model.jax: not a serialized jax.export.Exported"),
])
def test_tampered_folders_are_named_errors(exported, tmp_path, attack, match):
    folder = tampered(exported, tmp_path)
    attack(folder)
    with pytest.raises(ExportError, match=match):
        load_exported(folder)


def test_a_function_with_a_custom_call_beyond_a_models_needs_is_refused(exported, tmp_path):
    folder = tampered(exported, tmp_path)

    def with_lapack(weights, x):  # QR lowers to a LAPACK kernel call on CPU
        return jax.numpy.linalg.qr(x[:, :, :, 0])[0]

    weights = dict(np.load(folder / "weights.npz"))
    specs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in weights.items()}
    crafted = jax.export.export(jax.jit(with_lapack), platforms=("cpu",))(
        specs, jax.ShapeDtypeStruct((2, 28, 28, 1), np.float32))
    (folder / "model.jax").write_bytes(bytes(crafted.serialize()))
    with pytest.raises(ExportError, match=r"model.jax: calls \['lapack_\w+', 'lapack_\w+'\], outside what a model's"):
        load_exported(folder)


def test_a_zip_member_inflating_beyond_its_budget_is_refused(exported, tmp_path):
    import hashlib

    folder = tampered(exported, tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.npy", b"\x00" * (64 << 20))  # 64 MiB of zeros in ~64 KB
    (folder / "weights.npz").write_bytes(buffer.getvalue())
    edit_contract(folder, weights={"file": "weights.npz", "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()})
    with pytest.raises(ValueError, match=r"weights.npz: .*member bomb.npy"):
        load_exported(folder)


def test_a_symlinked_file_is_refused(exported, tmp_path):
    folder = tampered(exported, tmp_path)
    (folder / "contract.json").unlink()
    (folder / "contract.json").symlink_to(exported[0] / "contract.json")
    with pytest.raises(ExportError, match=r"contract.json: export contract is a symbolic link"):
        load_exported(folder)


def test_the_command_names_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    from jaxvision.export import main

    assert main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "nowhere") in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_readme_command_exports_a_checkpoint_fit_wrote(tmp_path, monkeypatch):
    """The README's command, as written, on ``fit``'s ModelCheckpoint: the input shape comes from
    the data ``fit`` saw (1 channel here, which no image-size default would guess)."""
    from jaxvision.export import main
    from jaxvision.train import ModelCheckpoint, fit
    from jaxvision.train.checkpoint import recorded_input

    (command,) = re.findall(r"`(python -m jaxvision\.export \S+ \S+)`", README.read_text())
    checkpoint, out = command.split()[3:]
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (16, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, 16)
    model = build_model("mnist_convnet", seed=2)
    # Batches from an iterable (arrays are recorded too: tests/train/test_train_checkpoint.py).
    fit(model, [(x, y)], epochs=1, loss="sparse_categorical_crossentropy", optimizer="adam", verbose=0,
        callbacks=[ModelCheckpoint(checkpoint)])
    assert recorded_input(checkpoint) == ((28, 28, 1), "float32")
    assert main([checkpoint, out]) == 0
    assert contract(tmp_path / out)["input"] == {"shape": [None, 28, 28, 1], "dtype": "float32"}
    outputs = run_readme_snippet({tmp_path / out: x[:3]})
    np.testing.assert_allclose(outputs[tmp_path / out], predict(model, x[:3]), rtol=1e-6, atol=1e-6)
