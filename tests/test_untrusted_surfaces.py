"""Files from strangers, round 2 (SECURITY.md): module scope, FIFOs and links wherever a loader
reads, memory in proportion to every file, exported folders that run arrays only, integrity
that a file cannot switch off, and one line with exit status 2 from every command. Each test
crafts the file of one reproduction and expects a named error."""

import dataclasses
import json
import os
import re
import shutil
import sys
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.data import image_dataset_from_directory
from jaxvision.export import ExportError, export_model, load_exported
from jaxvision.layers import Dense
from jaxvision.models import Sequential, build_model
from jaxvision.models.registry import rebuild_model
from jaxvision.models.segment_anything import load_sam, sam_from_state_dict
from jaxvision.models.segment_anything.torch_zip import load_torch_state_dict
from jaxvision.train import load_model, restore, save_checkpoint
from jaxvision.train.checkpoint import meta_sha256, recorded_image_size
from jaxvision.weights import check_manifest, load_keras_weights, make_manifest, save_keras_weights

SAM_FIXTURES = Path(__file__).parent / "models" / "segment_anything"


def tiny() -> Sequential:
    return Sequential([Dense(3, 4, rngs=nnx.Rngs(0))])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "ckpt"
    save_checkpoint(path, build_model("mnist_convnet"))
    return path


def copy_of(checkpoint: Path, folder: Path, name: str = "ckpt") -> Path:
    return Path(shutil.copytree(checkpoint, folder / name))


def rewrite_meta(path: Path, change, rehash: bool = True) -> None:
    """Edit a checkpoint's meta as a crafted file would, its meta hash recomputed (``rehash``)."""
    meta_file = path / "1" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    change(meta)
    if rehash and "meta_sha256" in meta:
        meta["meta_sha256"] = meta_sha256(meta)
    meta_file.write_text(json.dumps(meta))


# 1. trusted_modules names exactly what it admits -------------------------------------------

def test_trusted_modules_admits_only_the_modules_it_names(tmp_path, monkeypatch):
    """A string was iterated (``"mymodels"`` trusted ``m``, ``y``, ... and a module ``e`` ran), and
    a package name admitted its ``__main__`` and every submodule."""
    (tmp_path / "e.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    package = tmp_path / "jv_trusted_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("__main__", "train"):
        (package / f"{name}.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = lambda module: json.dumps({"name": "jv_nowhere", "module": module, "kwargs": {}})  # noqa: E731

    with pytest.raises(TypeError, match=r"not the string 'mymodels'; write trusted_modules=\('mymodels',\)"):
        rebuild_model(config("e"), trusted_modules="mymodels")
    for module in ("jv_trusted_pkg.__main__", "jv_trusted_pkg.train"):
        with pytest.raises(ValueError, match=f"defined in module '{module}', which is not imported"):
            rebuild_model(config(module), trusted_modules=("jv_trusted_pkg",), source="checkpoint x")
    assert not list(tmp_path.rglob("*.ran"))  # nothing was imported
    with pytest.raises(ValueError, match="module 'jv_trusted_pkg.train' was imported but registers no model"):
        rebuild_model(config("jv_trusted_pkg.train"), trusted_modules=("jv_trusted_pkg.train",))
    assert [p.name for p in tmp_path.rglob("*.ran")] == ["train.py.ran"]  # named exactly: imported
    sys.modules.pop("jv_trusted_pkg.train"), sys.modules.pop("jv_trusted_pkg")


# 2. No FIFO, device or link anywhere a loader reads ------------------------------------------

def outcome_within(load, fifos: list[Path], seconds: float = 30) -> str:
    """``load()`` in a thread: ``"loaded"`` or the error's message. A loader still blocked after
    ``seconds`` is released (each FIFO opened for writing, then closed: the reader sees its end)
    and the test fails, so a FIFO can never hang the suite."""
    outcome = {}

    def target():
        try:
            load()
            outcome["message"] = "loaded"
        except Exception as error:
            outcome["message"] = str(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(10)
        pytest.fail(f"blocked for {seconds} s on the FIFO(s) {[str(f) for f in fifos]}")
    return outcome["message"]


@pytest.mark.parametrize("member", ["1/meta/metadata", "1/_CHECKPOINT_METADATA", "1/arrays/manifest.ocdbt"])
def test_a_fifo_in_a_checkpoint_is_refused_without_hanging(checkpoint, tmp_path, member):
    """A FIFO in any of three places orbax opens hung ``load_model`` and every ``--checkpoint``
    command."""
    path = copy_of(checkpoint, tmp_path)
    (path / member).unlink()
    os.mkfifo(path / member)
    message = outcome_within(lambda: load_model(path), [path / member])
    assert re.fullmatch(f"checkpoint {re.escape(str(path))}: {member} is not a regular file .*; refused", message), \
        message


def test_a_fifo_as_manifest_or_keras_file_is_refused_without_hanging(tmp_path, capsys):
    from jaxvision.debug.__main__ import main

    weights = tmp_path / "w.weights.h5"
    save_keras_weights(tiny(), weights)
    os.mkfifo(tmp_path / "manifest.json")
    message = outcome_within(lambda: check_manifest(tiny(), weights, tmp_path / "manifest.json"),
                             [tmp_path / "manifest.json"])
    assert re.fullmatch(r"manifest .*manifest.json is not a regular file .*; refused", message), message
    os.mkfifo(tmp_path / "model.keras")
    status = []
    outcome_within(lambda: status.append(main(["compare", "--keras", str(tmp_path / "model.keras"), "--jaxvision",
                                               "mnist_convnet"])), [tmp_path / "model.keras"])
    err = capsys.readouterr().err
    assert status == [2] and err.count("\n") == 1 and "model.keras is not a regular file" in err, err


def test_links_out_of_checkpoints_and_presets_are_refused(checkpoint, tmp_path):
    # A checkpoint's step folder linked to another checkpoint's: the other's weights loaded.
    other = tmp_path / "other"
    model = build_model("mnist_convnet", seed=1)
    save_checkpoint(other, model)
    path = copy_of(checkpoint, tmp_path)
    shutil.rmtree(path / "1")
    (path / "1").symlink_to(other / "1")
    with pytest.raises(ValueError, match=r"checkpoint .*ckpt: 1 is a symbolic link; refused"):
        restore(path, build_model("mnist_convnet"))

    # A KerasHub preset's weights linked to a file outside the preset.
    outside = tmp_path / "outside.weights.h5"
    save_keras_weights(tiny(), outside)
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").write_text(json.dumps({"class_name": "TinyBackbone"}))
    (preset / "model.weights.h5").symlink_to(outside)
    with pytest.raises(ValueError, match=r"KerasHub weights .*preset/model.weights.h5 resolves to .*outside"):
        load_keras_weights(tiny(), preset)

    # A SAM preset's weights linked to another preset's file.
    sam_preset = tmp_path / "sam_preset"
    sam_preset.mkdir()
    (sam_preset / "model.weights.h5").symlink_to(SAM_FIXTURES / "keras_hub_tiny" / "model.weights.h5")
    with pytest.raises(ValueError, match=r"SAM preset file .*sam_preset/model.weights.h5 resolves to .*outside"):
        load_sam(sam_preset)

    # A folder hashed for its manifest (TF.js, KerasHub) holding a link to a file outside.
    (tmp_path / "secret.bin").write_bytes(b"do not read me")
    (preset / "model.weights.h5").unlink()
    shutil.copy(outside, preset / "model.weights.h5")
    (preset / "extra.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(ValueError, match=r"weights folder .*preset: extra.bin is a symbolic link; refused"):
        make_manifest(tiny(), preset, input_shape=None)


# 3. Memory in proportion to the file ---------------------------------------------------------

def pth(path: Path, payload: bytes, storages: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", b"little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def views_pickle(count: int, numel: int) -> bytes:
    """{"w0": view, "w1": view, ...}: ``count`` full views of one float storage of ``numel``."""
    storage = (b"(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nJ" + numel.to_bytes(4, "little") + b"tQ")
    body = b"\x80\x02ccollections\nOrderedDict\n)R"
    for i in range(count):
        body += (f"Vw{i}\n".encode() + b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"K\x00(J"
                 + numel.to_bytes(4, "little") + b"t(K\x01t\x89ccollections\nOrderedDict\n)RtRs")
    return body + b"."


def test_a_sparse_pickle_memo_index_is_refused_within_bounded_memory(tmp_path):
    """One ``LONG_BINPUT 2**27`` in a 257-byte ``.pth`` grew the C unpickler's memo to 2.29 GB
    (CPython gh-115952). Peak allocation measured by tracemalloc, which sees the memo's."""
    payload = b"\x80\x02ccollections\nOrderedDict\n)Rr" + (1 << 27).to_bytes(4, "little") + b"."
    path = pth(tmp_path / "memo.pth", payload, {})
    assert path.stat().st_size < 400
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"memo.pth: .*stores memo index 134217728 after 0 entries; refused"):
            load_torch_state_dict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_views_of_one_storage_are_charged_each(tmp_path):
    """512 views of one 1 MiB storage: a 1.1 MB file yielded 512 MiB."""
    numel = 1 << 18  # 1 MiB of float32
    path = pth(tmp_path / "views.pth", views_pickle(512, numel), {"0": np.zeros(numel, "<f4").tobytes()})
    assert path.stat().st_size < 1_200_000
    with pytest.raises(ValueError, match=r"views.pth: .*tensor of size \(262144,\) declares 1,048,576 bytes, more "
                                         r"than this file may hold"):
        load_torch_state_dict(path)
    two = pth(tmp_path / "two.pth", views_pickle(2, numel), {"0": np.arange(numel, dtype="<f4").tobytes()})
    tensors = load_torch_state_dict(two)  # views within the budget load, each its own copy
    np.testing.assert_array_equal(tensors["w1"], np.arange(numel, dtype=np.float32))


def test_hdf5_chunk_sizes_are_charged_before_reading(tmp_path):
    """A 64-float bias stored in one huge gzip chunk: HDF5 inflates the whole chunk to read it."""
    model = Sequential([Dense(3, 64, rngs=nnx.Rngs(0))])
    path = tmp_path / "w.weights.h5"
    save_keras_weights(model, path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars"].create_dataset("1", data=np.ones(64, "<f4"), chunks=(1 << 24,), maxshape=(None,),
                                              compression="gzip")
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"w.weights.h5: /layers/dense/vars/1 \(chunks of \[16777216\]\) declares "
                                         r"67,108,864 bytes, more than this file may hold"):
        load_keras_weights(model, path)


def test_load_sam_checks_the_key_set_before_building(tmp_path):
    """800 decoder blocks in a small file took 94 s and 468 MB to build before being refused."""
    tensors = load_torch_state_dict(SAM_FIXTURES / "sam_tiny.pth")
    block = {k: v for k, v in tensors.items() if k.startswith("mask_decoder.transformer.layers.0.")}
    bomb = dict(tensors)
    for i in range(2, 800):
        bomb.update({k.replace("layers.0.", f"layers.{i}.", 1): v for k, v in block.items()})
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"bomb.pth: unexpected tensor\(s\) \['mask_decoder.transformer.layers.10.*"
                                         r"for a SAM model with 2 encoder blocks"):
        sam_from_state_dict(bomb, source="bomb.pth")
    assert time.perf_counter() - start < 5
    deep = {**tensors, **{k.replace("blocks.0.", f"blocks.{i}.", 1): v for k, v in tensors.items()
                          if k.startswith("image_encoder.blocks.0.") for i in range(2, 100)}}
    with pytest.raises(ValueError, match=r"deep.pth: 100 encoder blocks, more than the 64 a SAM model may have"):
        sam_from_state_dict(deep, source="deep.pth")
    broken = {**tensors, "image_encoder.blocks.0.attn.rel_pos_h": np.zeros((27, 0), np.float32)}
    with pytest.raises(ValueError, match=r"broken.pth: tensor 'image_encoder.blocks.0.attn.rel_pos_h' has shape "
                                         r"\(27, 0\), not 2 positive sizes"):
        sam_from_state_dict(broken, source="broken.pth")  # was a ZeroDivisionError


@pytest.mark.parametrize("size, message", [(20000, "image_size must be a side or .* from 1 to 2048, got 20000"),
                                           ([], r"image_size must be .* got \[\]"),
                                           ("[" * 50_000, "not readable JSON \\(RecursionError")])
def test_recorded_image_sizes_are_bounded(tmp_path, size, message):
    """``{"image_size": 20000}`` in a run's metrics.json made ch10_activations allocate 4.5 GiB."""
    record = tmp_path / "metrics.json"
    record.write_text(size if isinstance(size, str) else json.dumps({"image_size": size}))
    with pytest.raises(ValueError, match=f"metrics.json: {message}"):
        recorded_image_size(tmp_path / "ckpt")


# 4. Exported folders run arrays only -----------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export_model(build_model("mnist_convnet"), tmp_path_factory.mktemp("exported") / "out",
                        input_shape=(28, 28, 1), platforms=("cpu",))


def crafted_function(lines: str, result: str) -> bytes:
    """A serialized Exported of ``x + 1`` with ``lines`` of StableHLO added before its return."""
    from jax.interpreters import mlir

    base = jax.export.export(jax.jit(lambda x: x + 1), platforms=("cpu",))(jax.ShapeDtypeStruct((2,), np.float32))
    text = re.sub(r"(\n\s*)return %1 : ", lambda m: m[1] + lines.replace("\n", m[1]) + m[1] + f"return {result} : ",
                  base.mlir_module())
    with mlir.make_ir_context():
        code = mlir.module_to_bytecode(mlir.ir.Module.parse(text))
    return bytes(dataclasses.replace(base, mlir_module_serialized=code).serialize())


TOKEN = "%t = stablehlo.create_token : !stablehlo.token\n"


@pytest.mark.parametrize("lines, result, message", [
    (TOKEN + '%t2 = "stablehlo.outfeed"(%1, %t) {outfeed_config = ""} : (tensor<2xf32>, !stablehlo.token) -> '
     "!stablehlo.token", "%1", "the operation stablehlo.outfeed"),
    (TOKEN + '%i:2 = "stablehlo.infeed"(%t) {infeed_config = ""} : (!stablehlo.token) -> (tensor<2xf32>, '
     "!stablehlo.token)", "%i#0", "the operation stablehlo.infeed"),
    ('%2 = stablehlo.custom_call @"Sharding-callback"(%1) : (tensor<2xf32>) -> tensor<2xf32>', "%2",
     r"calls \['Sharding-callback'\], outside what a model's inference needs"),
])
def test_host_transfers_and_custom_calls_are_refused_whatever_their_spelling(exported, tmp_path, lines, result,
                                                                             message):
    """infeed/outfeed made ``run`` block forever; a quoted custom-call name slipped past the text
    regex."""
    folder = Path(shutil.copytree(exported, tmp_path / "out"))
    (folder / "model.jax").write_bytes(crafted_function(lines, result))
    with pytest.raises(ExportError, match=f"model.jax: (contains )?{message}"):
        load_exported(folder)


@pytest.mark.parametrize("change, message", [
    ({"output": {"shape": [None, 11], "dtype": "float32"}},
     r"output \{'shape': \[None, 11\], 'dtype': 'float32'\} is not the function's \{'shape': \[None, 10\]"),
    ({"class_names": ["cat", "dog"]}, r"class_names must be null or one name per output \(10\)"),
    ({"platforms": ["cpu", "tpu"]}, r"platforms \['cpu', 'tpu'\] are not the function's \['cpu'\]"),
])
def test_the_contract_is_checked_against_the_function(exported, tmp_path, change, message):
    folder = Path(shutil.copytree(exported, tmp_path / "out"))
    contract = json.loads((folder / "contract.json").read_text())
    (folder / "contract.json").write_text(json.dumps({**contract, **change}))
    with pytest.raises(ExportError, match=f"contract.json: {message}"):
        load_exported(folder)


def test_an_npy_header_is_checked_before_numpy_allocates_it(exported, tmp_path):
    import hashlib
    import io

    folder = Path(shutil.copytree(exported, tmp_path / "out"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 16, 1 << 16)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("conv2d/kernel.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64)
    (folder / "weights.npz").write_bytes(buffer.getvalue())
    contract = json.loads((folder / "contract.json").read_text())
    contract["weights"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ExportError, match=r"weights.npz: conv2d/kernel.npy: its header declares 17,179,869,184 bytes"):
        load_exported(folder)


# 5. Integrity cannot be switched off by the file ----------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda meta: meta.pop("sha256"), "meta has no sha256"),
    (lambda meta: meta.pop("meta_sha256"), "meta has no meta_sha256"),
    (lambda meta: meta.update(epoch=7), r"its meta \(build config, epochs, history\) does not match the sha256"),
    (lambda meta: meta.update(build_config=meta["build_config"].replace("mnist_convnet", "mini_xception")),
     r"its meta .* does not match the sha256"),
])
def test_integrity_cannot_be_switched_off_by_the_file(checkpoint, tmp_path, change, message):
    path = copy_of(checkpoint, tmp_path)
    rewrite_meta(path, change, rehash=False)
    with pytest.raises(ValueError, match=f"checkpoint .*ckpt: {message}"):
        restore(path, build_model("mnist_convnet"))


# 6. One line and exit status 2 from every command ---------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda meta: meta.pop("epoch"), r"meta field 'epoch' is None"),
    (lambda meta: meta.update(build_config=meta["build_config"].replace('"jaxvision.models.convnets"', "5")
                              .replace('"mnist_convnet"', '"jv_elsewhere"')), "name and module must be strings"),
    (lambda meta: meta.update(build_config=meta["build_config"].replace('"kwargs": {}', '"kwargs": []')),
     "kwargs an object, got str, str, list"),
    (lambda meta: meta.update(build_config=meta["build_config"].replace('"kwargs": {}', '"kwargs": {"x": 1}')),
     "cannot be built from the recorded kwargs"),
    ("image_size", "image_size must be a side or"),
])
def test_the_export_command_gives_one_line_and_status_2(checkpoint, tmp_path, capsys, change, message):
    from jaxvision.export import main

    path = copy_of(checkpoint, tmp_path)
    if change == "image_size":
        (tmp_path / "metrics.json").write_text(json.dumps({"image_size": []}))
    else:
        rewrite_meta(path, change)
    assert main([str(path), str(tmp_path / "out"), "--platforms", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err), err


def test_the_debug_command_gives_one_line_and_status_2_for_damaged_keras_files(tmp_path, capsys):
    from jaxvision.debug.__main__ import main

    weights = tmp_path / "model.weights.h5"
    save_keras_weights(tiny(), weights)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    with zipfile.ZipFile(tmp_path / "ok.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", json.dumps(config) + " " * 4000)
        archive.write(weights, "model.weights.h5")
    blob = bytearray((tmp_path / "ok.keras").read_bytes())
    start = blob.index(b"config.json") + len("config.json") + 20  # inside the deflated config
    blob[start] ^= 0xFF
    (tmp_path / "corrupt.keras").write_bytes(bytes(blob))
    with zipfile.ZipFile(tmp_path / "nested.keras", "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", '{"a": ' * 100_000 + "1" + "}" * 100_000)
    for name in ("corrupt.keras", "nested.keras"):
        assert main(["compare", "--keras", str(tmp_path / name), "--jaxvision", "mnist_convnet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("python -m jaxvision.debug: error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("edit, message", [
    (lambda e: e.update(quantization={"dtype": "uint8", "scale": "x", "min": 0}), "malformed quantization"),
    (lambda e: e.update(quantization={"dtype": "uint8", "scale": 0.5}), "malformed quantization"),
    (lambda e: e.update(shape=[3, "HUGE"]), r"not readable JSON \(ValueError: Exceeds the limit"),
])
def test_malformed_tfjs_metadata_is_a_value_error_naming_the_file(tmp_path, edit, message):
    """Quantization scales raised TypeError or KeyError; a 5000-digit number a bare ValueError."""
    entry = {"name": "dense/kernel", "shape": [3, 4], "dtype": "float32"}
    edit(entry)
    bias = {"name": "dense/bias", "shape": [4], "dtype": "float32"}
    text = json.dumps({"weightsManifest": [{"paths": ["s.bin"], "weights": [entry, bias]}]}).replace('"HUGE"', "9" * 5000)
    (tmp_path / "model.json").write_text(text)
    (tmp_path / "s.bin").write_bytes(np.zeros(16, "<f4").tobytes())
    with pytest.raises(ValueError, match=f"model.json: .*{message}"):
        load_keras_weights(tiny(), tmp_path / "model.json")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("tensors"), "tensors must map names to"),
    (lambda m: m.update(tensors={"dense/kernel": {"shape": "big", "sha256": "0"}}), "tensors must map names to"),
    (lambda m: m.update(golden={"input": {"seed": 0, "shape": [1, 20000, 20000, 3], "low": 0, "high": 1}}),
     r"golden input shape \[1, 20000, 20000, 3\] has more than 16,777,216 elements"),
])
def test_malformed_manifests_are_value_errors_naming_the_manifest(tmp_path, edit, message):
    model = tiny()
    weights = tmp_path / "w.weights.h5"
    save_keras_weights(model, weights)
    manifest = make_manifest(model, weights, input_shape=None)
    edit(manifest)
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=f"manifest .*m.json: not a jaxvision manifest \\({message}"):
        check_manifest(model, weights, tmp_path / "m.json")


# 7. Class folders ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["cat", "../elsewhere"])
def test_a_class_folder_linking_to_a_sibling_or_out_of_the_root_is_refused(tmp_path, target):
    root = tmp_path / "data"
    for name in ("cat", "../elsewhere"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / name / "0.png")
    (root / "dog").symlink_to(root / target)
    with pytest.raises(ValueError, match=r"class folder .*data/dog is a symbolic link to .*; refused"):
        image_dataset_from_directory(root, image_size=(8, 8), batch_size=2)



# 8. SECURITY.md: every promise names a test that exists ------------------------------------------

def test_every_promise_in_security_md_names_an_existing_test():
    root = Path(__file__).resolve().parents[1]
    text = (root / "SECURITY.md").read_text()
    promises = text[text.index("## What jaxvision promises"):text.index("## Fuzzing")]
    bullets = [b for b in re.split(r"\n(?=- |\*\*)", promises) if b.startswith("- ")]
    assert len(bullets) >= 25 and all("::test_" in b for b in bullets), [b[:80] for b in bullets if "::test_" not in b]
    aliases = {"F": "tests/test_untrusted_files.py", "S": "tests/test_untrusted_surfaces.py"}
    named = re.findall(r"`([\w/.]+)::(test_\w+)`", promises)
    assert len(named) >= 40
    for file, test in named:
        assert f"def {test}(" in (root / aliases.get(file, file)).read_text(), f"{file}::{test}"


def test_checked_tree_skips_what_is_removed_while_it_walks(tmp_path, monkeypatch):
    """orbax clears an unfinished write's temporary folder while a resumed run walks the
    checkpoint (test_sigkilled_training_resumes_bit_identically failed on FileNotFoundError)."""
    import os
    import shutil

    from jaxvision import untrusted

    (tmp_path / "kept").write_bytes(b"12")
    gone = tmp_path / "2.orbax-checkpoint-tmp"
    gone.mkdir()
    (gone / "d").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir_then_remove(folder):
        if isinstance(folder, int):  # rmtree's own scans, by descriptor
            return real_scandir(folder)
        entries = list(real_scandir(folder))
        if Path(folder) == tmp_path:
            shutil.rmtree(gone)
        return iter(entries)

    monkeypatch.setattr(untrusted.os, "scandir", scandir_then_remove)
    assert untrusted.checked_tree(tmp_path, "checkpoint") == 2
