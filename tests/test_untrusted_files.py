"""Files from strangers (SECURITY.md): each attack class is crafted here and must end in a
named ``ValueError`` — never a read outside the file, a hang, memory out of proportion to the
file's size, or a silent wrong result."""

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.applications import decode_predictions
from jaxvision.data import image_dataset_from_directory
from jaxvision.data.image_io import load_rgb
from jaxvision.data.mnist import load_mnist
from jaxvision.layers import Dense
from jaxvision.models import Sequential, build_model
from jaxvision.models.segment_anything import torch_zip
from jaxvision.models.segment_anything.keras_hub import load_keras_hub_preset
from jaxvision.models.segment_anything.torch_zip import load_torch_state_dict
from jaxvision.train import restore, save_checkpoint
from jaxvision.train.checkpoint import meta_sha256
from jaxvision.weights import load_keras_weights, save_keras_weights

SECRET = b"do not read me " * 4


def tiny() -> Sequential:
    return Sequential([Dense(3, 4, rngs=nnx.Rngs(0))])


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside every weights folder: 60 bytes, the size of dense/kernel (3 × 4 × 4 + 12)."""
    path = tmp_path / "secret.bin"
    path.write_bytes(SECRET)
    return path


# TF.js: paths in the manifest -------------------------------------------------------------

def tfjs_model(folder: Path, paths: list[str], weights: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    weights = weights or [{"name": "dense/kernel", "shape": [3, 4], "dtype": "float32"},
                          {"name": "dense/bias", "shape": [4], "dtype": "float32"}]
    (folder / "model.json").write_text(json.dumps({"weightsManifest": [{"paths": paths, "weights": weights}]}))
    return folder / "model.json"


def test_tfjs_a_real_manifest_loads(tmp_path):
    model_json = tfjs_model(tmp_path / "m", ["shard1.bin"])
    (tmp_path / "m" / "shard1.bin").write_bytes(np.arange(16, dtype="<f4").tobytes())
    model = tiny()
    load_keras_weights(model, model_json)
    np.testing.assert_array_equal(model.dense.bias[...], [12, 13, 14, 15])


@pytest.mark.parametrize("shard, message", [
    ("../secret.bin", "resolves to .*secret.bin, outside"),
    ("ABSOLUTE", "must be a relative file name"),
    ("link.bin", "resolves to .*secret.bin, outside"),
])
def test_tfjs_shards_outside_the_folder_are_refused(tmp_path, secret, shard, message):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "link.bin").symlink_to(secret)
    model_json = tfjs_model(tmp_path / "m", [str(secret) if shard == "ABSOLUTE" else shard])
    model = tiny()
    before = np.asarray(model.dense.bias[...]).copy()
    with pytest.raises(ValueError, match=message):
        load_keras_weights(model, model_json, strict=False)
    np.testing.assert_array_equal(model.dense.bias[...], before)


def test_tfjs_a_shard_listed_many_times_and_malformed_entries_are_named(tmp_path):
    model_json = tfjs_model(tmp_path / "m", ["s.bin"] * 128)
    (tmp_path / "m" / "s.bin").write_bytes(np.zeros(16, "<f4").tobytes())
    with pytest.raises(ValueError, match="listed more than once"):
        load_keras_weights(tiny(), model_json)
    model_json = tfjs_model(tmp_path / "n", ["s.bin"], [{"name": "dense/kernel", "shape": [3, 4]}])
    (tmp_path / "n" / "s.bin").write_bytes(np.zeros(12, "<f4").tobytes())
    with pytest.raises(ValueError, match=r"model.json: weight 'dense/kernel' has unsupported or missing dtype None"):
        load_keras_weights(tiny(), model_json)
    model_json = tfjs_model(tmp_path / "o", ["s.bin"], [{"name": "dense/kernel", "shape": "big", "dtype": "float32"}])
    (tmp_path / "o" / "s.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="malformed shape 'big'"):
        load_keras_weights(tiny(), model_json)


# HDF5: links, external storage, virtual datasets, declared sizes -----------------------------

def weights_file(tmp_path: Path, name: str = "w.weights.h5") -> Path:
    path = tmp_path / name
    save_keras_weights(tiny(), path)
    return path


def replace_kernel(path: Path, make) -> None:
    with h5py.File(path, "a") as f:
        group = f["layers/dense/vars"]
        del group["0"]
        make(group, "0")


@pytest.mark.parametrize("attack, message", [
    ("external_link", "is an external link to .*other.h5.*refused"),
    ("external_storage", "stores its data in external file.*secret.bin.*refused"),
    ("virtual", "is a virtual dataset"),
    ("soft_link_loop", "is a soft link to '/layers'; refused"),
])
def test_hdf5_never_reads_outside_the_file(tmp_path, secret, attack, message):
    path = weights_file(tmp_path)
    with h5py.File(tmp_path / "other.h5", "w") as other:
        other["kernel"] = np.frombuffer(SECRET[:48], "<f4").reshape(3, 4)
    if attack == "external_link":
        replace_kernel(path, lambda g, k: g.__setitem__(k, h5py.ExternalLink(str(tmp_path / "other.h5"), "kernel")))
    elif attack == "external_storage":
        replace_kernel(path, lambda g, k: g.create_dataset(k, (3, 4), "<f4", external=[(str(secret), 0, 48)]))
    elif attack == "virtual":
        layout = h5py.VirtualLayout((3, 4), "<f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "kernel", shape=(3, 4))
        replace_kernel(path, lambda g, k: g.create_virtual_dataset(k, layout))
    else:
        with h5py.File(path, "a") as f:
            f["layers/dense/layers"] = h5py.SoftLink("/layers")  # walking it would never end
    with pytest.raises(ValueError, match=message):
        load_keras_weights(tiny(), path)


def test_hdf5_links_are_refused_in_legacy_files_keras_archives_and_sam_presets(tmp_path, secret):
    legacy = tmp_path / "legacy.h5"
    with h5py.File(legacy, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group.create_dataset("dense/kernel:0", (3, 4), "<f4", external=[(str(secret), 0, 48)])
        group["dense/bias:0"] = np.zeros(4, "<f4")
    with pytest.raises(ValueError, match="external file"):
        load_keras_weights(tiny(), legacy)
    inner = weights_file(tmp_path, "inner.weights.h5")
    replace_kernel(inner, lambda g, k: g.__setitem__(k, h5py.ExternalLink(str(secret), "x")))
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.write(inner, "model.weights.h5")
    with pytest.raises(ValueError, match="external link"):
        load_keras_weights(tiny(), tmp_path / "m.keras")
    sam = tmp_path / "sam.weights.h5"
    with h5py.File(sam, "w") as f:
        f["mask_decoder/iou_token/vars/0"] = h5py.ExternalLink(str(tmp_path / "x.h5"), "y")
    with pytest.raises(ValueError, match="external link"):
        load_keras_hub_preset(sam, lambda depth: ["mask_decoder.iou_token.weight"])


def test_declared_sizes_are_checked_before_anything_is_read(tmp_path):
    # A layer the model does not have, declaring 10 GB in a few KB (chunked, compressed, never
    # written): never read at all.
    path = weights_file(tmp_path)
    with h5py.File(path, "a") as f:
        f.create_group("layers/unknown/vars").create_dataset("0", (50_000, 50_000), "<f4", chunks=(64, 64),
                                                            compression="gzip")
    assert path.stat().st_size < 100_000
    assert load_keras_weights(tiny(), path, strict=False).unexpected == ("unknown (unknown)",)
    # A kernel of the right shape that the file cannot hold: refused by its declared size.
    big = Sequential([Dense(1000, 1000, rngs=nnx.Rngs(0))])
    path = tmp_path / "big.weights.h5"
    save_keras_weights(Sequential([Dense(3, 4, rngs=nnx.Rngs(0))]), path)
    replace_kernel(path, lambda g, k: g.create_dataset(k, (1000, 1000), "<f4", chunks=(100, 100), compression="gzip"))
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.zeros(1000, "<f4")
    with pytest.raises(ValueError, match=r"declares 4,000,000 bytes, more than this file may hold"):
        load_keras_weights(big, path)
    load_keras_weights(big, path, max_bytes=5_000_000)  # allowed explicitly
    # A .keras whose member inflates 1000×: refused from its declared size, before inflating.
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", b"\0" * 50_000_000)
    with pytest.raises(ValueError, match=r"member model.weights.h5 declares 50,000,000 bytes"):
        load_keras_weights(tiny(), tmp_path / "bomb.keras")


# torch .pth: the restricted unpickler ------------------------------------------------------

def pth(path: Path, payload: bytes, storages: dict[str, bytes], byteorder: bytes = b"little") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def tensor_pickle(storage: str, size: tuple[int, ...], stride: tuple[int, ...], key: str = "0", numel: int = 4,
                  second: tuple[str, str] | None = None) -> bytes:
    """A state dict {"w": tensor} (and {"v": ...} reading storage ``second``) in protocol 2."""
    def tensor(storage_name, storage_key, count, shape, strides):
        ints = lambda values: b"(" + b"".join(b"K" + bytes([v]) if v < 256 else b"M" + v.to_bytes(2, "little")  # noqa: E731
                                             for v in values) + b"t"
        return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + b"(Vstorage\nctorch\n" + storage_name.encode() + b"\nV"
                + storage_key.encode() + b"\nVcpu\n" + (b"K" + bytes([count])) + b"tQ" + b"K\x00"
                + ints(shape) + ints(strides) + b"\x89ccollections\nOrderedDict\n)RtR")
    body = b"\x80\x02ccollections\nOrderedDict\n)R" + b"Vw\n" + tensor(storage, key, numel, size, stride) + b"s"
    if second:
        body += b"Vv\n" + tensor(second[0], second[1], numel, (numel,), (1,)) + b"s"
    return body + b"."


def test_a_good_state_dict_loads(tmp_path):
    path = pth(tmp_path / "ok.pth", tensor_pickle("FloatStorage", (2, 2), (2, 1)), {"0": np.arange(4, dtype="<f4").tobytes()})
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], [[0, 1], [2, 3]])


@pytest.mark.parametrize("case, message", [
    ("stride0", r"size \(300, 300\) has more elements than its storage \(4\)"),
    ("byteorder", "byteorder must be 'little' or 'big'"),
    ("bool", "bool storage data/0 holds values other than 0 and 1"),
    ("two_dtypes", "storage data/0 is used as float32 and as int32"),
])
def test_pth_sizes_and_values_are_checked(tmp_path, case, message):
    data = {"0": np.arange(4, dtype="<f4").tobytes()}
    if case == "stride0":
        path = pth(tmp_path / "x.pth", tensor_pickle("FloatStorage", (300, 300), (0, 0)), data)
    elif case == "byteorder":
        path = pth(tmp_path / "x.pth", tensor_pickle("FloatStorage", (4,), (1,)), data, byteorder=b"middle")
    elif case == "bool":
        path = pth(tmp_path / "x.pth", tensor_pickle("BoolStorage", (4,), (1,)), {"0": bytes([0, 1, 2, 255])})
    else:
        path = pth(tmp_path / "x.pth", tensor_pickle("FloatStorage", (4,), (1,), second=("IntStorage", "0")), data)
    with pytest.raises(ValueError, match=message):
        load_torch_state_dict(path)


def test_a_refused_pickle_cannot_change_the_module(tmp_path):
    rebuild = torch_zip._rebuild_tensor
    before = (rebuild.__defaults__, rebuild.__kwdefaults__, dict(rebuild.__dict__), rebuild.__code__)
    # BUILD with slot state on the allowed global: setattr(global, "__defaults__", (1,)).
    payload = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b.")
    with pytest.raises(ValueError, match="expected a state_dict"):
        load_torch_state_dict(pth(tmp_path / "evil.pth", payload, {}))
    assert (rebuild.__defaults__, rebuild.__kwdefaults__, dict(rebuild.__dict__), rebuild.__code__) == before
    test_a_good_state_dict_loads(tmp_path)  # and the next, innocent file loads as it should


# Other inputs: MNIST, images, checkpoints, datasets, predictions --------------------------------

def test_a_small_mnist_gzip_cannot_inflate_without_bound(tmp_path):
    header = (2051).to_bytes(4, "big") + (60_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + b"\0" * 47_040_000)
    for name, magic, dims in [("train-labels-idx1-ubyte", 2049, [0]), ("t10k-images-idx3-ubyte", 2051, [0, 28, 28]),
                              ("t10k-labels-idx1-ubyte", 2049, [0])]:
        (tmp_path / name).write_bytes(b"".join(v.to_bytes(4, "big") for v in [magic, *dims]))
    assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"declares \[60000, 28, 28\] .* more than the file can hold"):
        load_mnist(tmp_path, download=False, verify=False)


def test_images_are_checked_by_declared_pixels_before_decoding(tmp_path):
    Image.new("L", (9000, 9000)).save(tmp_path / "big.png")
    assert (tmp_path / "big.png").stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"declares 9000 × 9000 = 81,000,000 pixels, more than .*MAX_IMAGE_PIXELS"):
        load_rgb(tmp_path / "big.png")


def test_non_regular_files_are_refused_before_opening(tmp_path):
    fifo = tmp_path / "x.weights.h5"
    os.mkfifo(fifo)
    os.symlink(fifo, tmp_path / "x.jpg")
    code = textwrap.dedent(f"""
        import sys
        from flax import nnx
        from jaxvision.data.image_io import load_rgb
        from jaxvision.layers import Dense
        from jaxvision.models import Sequential
        from jaxvision.models.segment_anything import load_sam
        from jaxvision.weights import load_keras_weights
        for load in (lambda: load_keras_weights(Sequential([Dense(3, 4, rngs=nnx.Rngs(0))]), {str(fifo)!r}),
                     lambda: load_rgb({str(tmp_path / 'x.jpg')!r}), lambda: load_sam({str(fifo)!r}),
                     lambda: load_sam("/dev/zero")):
            try:
                load()
            except ValueError as error:
                print("refused:", "not a regular file" in str(error))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:4] == ["refused: True"] * 4, done.stderr


def test_checkpoints_detect_flipped_bytes_and_oversized_build_configs(tmp_path):
    model = build_model("mnist_convnet")
    save_checkpoint(tmp_path / "ckpt", model)
    data = max((p for p in (tmp_path / "ckpt").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    data.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"checkpoint .*ckpt.*(do not match the sha256|cannot be read)"):
        restore(tmp_path / "ckpt", build_model("mnist_convnet"))

    save_checkpoint(tmp_path / "big", model)
    meta = next((tmp_path / "big").rglob("meta/metadata"))
    config = json.loads(meta.read_text())
    config["build_config"] = config["build_config"].replace('"num_classes": 10', '"num_classes": 4000000') \
        if "num_classes" in config["build_config"] else config["build_config"].replace('"kwargs": {}',
                                                                                        '"kwargs": {"num_classes": 4000000}')
    config["meta_sha256"] = meta_sha256(config)  # crafted with its hash recomputed: the shapes still refuse it
    meta.write_text(json.dumps(config))
    code = textwrap.dedent(f"""
        import resource
        from jaxvision.train import load_model
        try:
            load_model({str(tmp_path / 'big')!r})
        except ValueError as error:
            print("refused:", "dense/kernel: model has shape/dtype ((256, 4000000)" in str(error))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    refused, peak_mb = done.stdout.split()[1], int(done.stdout.split()[2])
    assert refused == "True", done.stdout + done.stderr
    assert peak_mb < 3000  # building it would allocate 4 GB for one kernel


def test_a_class_folder_linked_back_to_the_root_is_refused(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "0.png")
    (tmp_path / "zebra").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="class folder .*zebra links back to .*which contains the dataset root"):
        image_dataset_from_directory(tmp_path, image_size=(8, 8), batch_size=2)


@pytest.mark.parametrize("top", [0, -3, 1001, 2.5, True])
def test_decode_predictions_needs_a_top_from_1_to_1000(top):
    with pytest.raises(ValueError, match="top must be an integer from 1 to 1000"):
        decode_predictions(np.zeros((1, 1000), np.float32), top=top)
