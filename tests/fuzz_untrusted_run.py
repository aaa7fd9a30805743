"""Property fuzz of the untrusted-file readers, run by ``test_untrusted_fuzz.py`` in a subprocess
whose address space is capped (``RLIMIT_AS``), so a reader that allocates what a small file
declares dies with ``MemoryError`` instead of taking the machine. For every generated file the
reader must return or raise ``ValueError``/``FileNotFoundError`` (named errors), within the
per-case deadline, and never return bytes of the secret file that sits beside the folder.

Readers: the TF.js manifest, HDF5 and ``.pth`` readers, checkpoints (``load_model``),
exported folders (``load_exported``), weight manifests (``check_manifest``) and the SAM loader
(``load_sam`` and ``sam_from_state_dict``): generated files, and damaged, truncated, linked or
FIFO files and edited metadata. ``FUZZ_EXAMPLES`` (JSON) sets the number of cases per reader;
the number each reader ran, and its seconds, are printed, and the counts written to OUT_JSON.

Run: FUZZ_EXAMPLES='{"tfjs": 300, "checkpoint": 20}' python tests/fuzz_untrusted_run.py OUT_JSON
"""

import functools
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxvision.layers import Dense
from jaxvision.models import Sequential
from jaxvision.models.segment_anything.torch_zip import load_torch_state_dict
from jaxvision.weights import load_keras_weights

LIMIT = 3 << 30  # bytes of address space: jax needs ~1 GB; one careless allocation exceeds the rest
# cases per reader, e.g. FUZZ_EXAMPLES='{"tfjs": 300, "checkpoint": 20}' (readers not named: 150 and 20)
EXAMPLES = {"tfjs": 150, "hdf5": 150, "pth": 150, "checkpoint": 20, "exported": 20, "manifest": 20, "sam": 20,
            **json.loads(os.environ.get("FUZZ_EXAMPLES", "{}"))}
SAM_TINY = Path(__file__).parent / "models" / "segment_anything" / "sam_tiny.pth"

SECRET = np.full(16, 7.25, "<f4").tobytes()  # 64 bytes: exactly dense/kernel + dense/bias
NAMED = (ValueError, FileNotFoundError)
counts = {"tfjs": 0, "hdf5": 0, "pth": 0, "checkpoint": 0, "exported": 0, "manifest": 0, "sam": 0}


def model() -> Sequential:
    return Sequential([Dense(3, 4, rngs=nnx.Rngs(0))])


def never_secret(m: Sequential) -> None:
    assert not np.any(np.asarray(m.dense.bias[...]) == 7.25), "the secret file's bytes were loaded"


def folder() -> Path:
    root = Path(tempfile.mkdtemp())
    (root / "secret.bin").write_bytes(SECRET)
    (root / "m").mkdir()
    (root / "m" / "link.bin").symlink_to(root / "secret.bin")
    return root / "m"


paths = st.sampled_from(["s.bin", "t.bin", "../secret.bin", "link.bin", "", "/etc/hostname", "a/../s.bin", 3, None])
dims = st.one_of(st.integers(-2, 6), st.sampled_from([2 ** 31, 2 ** 62, 10 ** 9]), st.just("x"))
entries = st.fixed_dictionaries(
    {"name": st.sampled_from(["dense/kernel", "dense/bias", "other/w", "", 5])},
    optional={"shape": st.one_of(st.lists(dims, max_size=3), st.just("big")),
              "dtype": st.sampled_from(["float32", "float16", "int32", "bool", "uint8", "complex64", 1]),
              "quantization": st.fixed_dictionaries({"dtype": st.sampled_from(["uint8", "uint16", "x"])},
                                                    optional={"scale": st.floats(-2, 2), "min": st.floats(-2, 2)})})
manifests = st.lists(st.fixed_dictionaries({"paths": st.lists(paths, max_size=4),
                                            "weights": st.lists(entries, max_size=4)}), max_size=3)


@settings(max_examples=EXAMPLES["tfjs"], derandomize=True, deadline=5000, database=None,
          suppress_health_check=list(HealthCheck))
@given(manifest=st.one_of(manifests, st.just({}), st.integers()), s=st.binary(max_size=80), t=st.binary(max_size=80))
def fuzz_tfjs(manifest, s, t):
    counts["tfjs"] += 1
    root = folder()
    (root / "s.bin").write_bytes(s)
    (root / "t.bin").write_bytes(t)
    (root / "model.json").write_text(json.dumps({"weightsManifest": manifest}))
    m = model()
    try:
        load_keras_weights(m, root / "model.json", strict=False)
    except NAMED:
        pass
    never_secret(m)


nodes = st.sampled_from(["dataset", "big", "external_storage", "external_link", "soft_link", "soft_loop", "hard_loop",
                         "virtual", "group", "string"])


@settings(max_examples=EXAMPLES["hdf5"], derandomize=True, deadline=5000, database=None,
          suppress_health_check=list(HealthCheck))
@given(kind=nodes, shape=st.lists(st.integers(0, 5), max_size=3), index=st.sampled_from(["0", "1", "x"]),
       legacy=st.booleans())
def fuzz_hdf5(kind, shape, index, legacy):
    counts["hdf5"] += 1
    root = folder()
    path = root / "w.weights.h5"
    with h5py.File(path, "w") as f:
        if legacy:
            f.attrs["layer_names"] = [b"dense"]
            f.create_group("dense").attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
            group = f["dense"].create_group("dense")
            key = "kernel:0" if index == "0" else "bias:0"
        else:
            group, key = f.create_group("layers/dense/vars"), index
        if kind == "dataset":
            group[key] = np.zeros(shape, "<f4")
        elif kind == "big":
            group.create_dataset(key, (40_000, 40_000), "<f4", chunks=(64, 64), compression="gzip")
        elif kind == "external_storage":
            group.create_dataset(key, (4, 4), "<f4", external=[(str(root.parent / "secret.bin"), 0, 64)])
        elif kind == "external_link":
            with h5py.File(root / "other.h5", "w") as other:
                other["x"] = np.frombuffer(SECRET, "<f4")
            group[key] = h5py.ExternalLink(str(root / "other.h5"), "x")
        elif kind == "soft_link":
            group[key] = h5py.SoftLink("/layers")
        elif kind == "soft_loop":
            if legacy:
                group[key] = h5py.SoftLink(group.name)
            else:
                f["layers/dense/layers"] = h5py.SoftLink("/layers")
        elif kind == "hard_loop":  # a group linked into itself: walking it never ends
            if legacy:
                group[key] = group
            else:
                f["layers/dense/layers/inner"] = f["layers"]
        elif kind == "virtual":
            layout = h5py.VirtualLayout((4,), "<f4")
            layout[:] = h5py.VirtualSource(str(root / "nothing.h5"), "x", shape=(4,))
            group.create_virtual_dataset(key, layout)
        elif kind == "string":
            group[key] = "not numbers"
        else:
            group.create_group(key)
    m = model()
    try:
        load_keras_weights(m, path, strict=False)
    except NAMED:
        pass
    never_secret(m)


def valid_pth() -> bytes:
    payload = (b"\x80\x02ccollections\nOrderedDict\n)RVw\nctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\n"
               b"FloatStorage\nV0\nVcpu\nK\x04tQK\x00(K\x02K\x02t(K\x02K\x01t\x89ccollections\nOrderedDict\n)RtRs.")
    return payload


@settings(max_examples=EXAMPLES["pth"], derandomize=True, deadline=5000, database=None,
          suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       storage=st.binary(max_size=64), byteorder=st.sampled_from([b"little", b"big", b"", b"\xff"]),
       compress=st.booleans())
def fuzz_pth(edits, storage, byteorder, compress):
    counts["pth"] += 1
    payload = bytearray(valid_pth())
    for position, value in edits:
        payload[position % len(payload)] = value
    path = folder() / "x.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", bytes(payload))
        archive.writestr("archive/byteorder", byteorder)
        archive.writestr("archive/data/0", storage)
    try:
        tensors = load_torch_state_dict(path)
    except NAMED:
        return
    assert all(isinstance(v, np.ndarray) and v.nbytes <= 64 for v in tensors.values())


# Checkpoints, exported folders, manifests, SAM ------------------------------------------------

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 2 ** 40), st.floats(allow_nan=False),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=6)
# what is done to a file of a folder: edit its JSON, flip bytes, truncate, or put a FIFO or a link in its place
damage = st.one_of(st.tuples(st.just("json"), st.text(max_size=12), json_values),
                   st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(1, 255)),
                   st.tuples(st.just("truncate"), st.integers(0, 10 ** 6), st.none()),
                   st.tuples(st.sampled_from(["fifo", "link_out", "link_in"]), st.none(), st.none()))


def damaged(path: Path, change: tuple, key_choices: list[str]) -> None:
    """Apply ``change`` to the file ``path``; a ``json`` change sets one key (chosen from
    ``key_choices`` or the generated text) to a generated value."""
    kind, a, b = change
    if kind == "json":
        try:
            value = json.loads(path.read_text())
        except ValueError:
            value = None
        if isinstance(value, dict):
            value[key_choices[len(a) % len(key_choices)] if key_choices and len(a) % 3 else a] = b
        else:
            value = b
        path.write_text(json.dumps(value))
    elif kind in ("flip", "truncate"):
        data = bytearray(path.read_bytes())
        if data:
            if kind == "flip":
                data[a % len(data)] ^= b
            else:
                del data[a % len(data):]
        path.write_bytes(bytes(data))
    else:
        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "link_out":
            path.symlink_to(secret_file())
        else:
            path.symlink_to(path.parent)


@functools.cache
def secret_file() -> Path:
    path = Path(tempfile.mkdtemp()) / "secret.bin"
    path.write_bytes(SECRET)
    return path


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@functools.cache
def saved_checkpoint() -> Path:
    from jaxvision.models import build_model
    from jaxvision.train import save_checkpoint

    path = Path(tempfile.mkdtemp()) / "ckpt"
    save_checkpoint(path, build_model("mnist_convnet"))
    return path


def rehashed(path: Path) -> None:
    """A crafted meta whose hash is recomputed (a stranger can do that): the fields are checked."""
    from jaxvision.train.checkpoint import meta_sha256

    meta_file = path / "1" / "meta" / "metadata"
    try:
        meta = json.loads(meta_file.read_text())
        meta["meta_sha256"] = meta_sha256(meta)
        meta_file.write_text(json.dumps(meta))
    except (ValueError, TypeError, AttributeError, OSError):
        pass


META_KEYS = ["epoch", "step", "seed", "build_config", "history", "history_epochs", "callbacks", "stop_training",
             "sha256", "meta_sha256", "format"]


@settings(max_examples=EXAMPLES["checkpoint"], derandomize=True, deadline=30_000, database=None,
          suppress_health_check=list(HealthCheck))
@given(target=st.integers(0, 100), change=damage, rehash=st.booleans())
def fuzz_checkpoint(target, change, rehash):
    from jaxvision.train import load_model

    counts["checkpoint"] += 1
    path = Path(shutil.copytree(saved_checkpoint(), Path(tempfile.mkdtemp()) / "ckpt"))
    files = files_of(path)
    meta = path / "1" / "meta" / "metadata"
    chosen = meta if target % 3 == 0 else files[target % len(files)]
    damaged(chosen, change, META_KEYS if chosen == meta else ["shape", "dtype", "tree_metadata"])
    if rehash:
        rehashed(path)
    try:
        load_model(path)
    except NAMED:
        pass


@functools.cache
def saved_export() -> Path:
    from jaxvision.export import export_model
    from jaxvision.models import build_model

    return export_model(build_model("mnist_convnet"), Path(tempfile.mkdtemp()) / "out", input_shape=(28, 28, 1),
                        platforms=("cpu",))


CONTRACT_KEYS = ["format", "weights", "input", "output", "preprocessing", "class_names", "platforms", "model"]


@settings(max_examples=EXAMPLES["exported"], derandomize=True, deadline=30_000, database=None,
          suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(["contract.json", "model.jax", "weights.npz"]), change=damage, rehash=st.booleans())
def fuzz_exported(target, change, rehash):
    from jaxvision.export import load_exported

    counts["exported"] += 1
    folder = Path(shutil.copytree(saved_export(), Path(tempfile.mkdtemp()) / "out"))
    damaged(folder / target, change, CONTRACT_KEYS)
    if rehash and target == "weights.npz" and (folder / target).is_file() and not (folder / target).is_symlink():
        contract = json.loads((folder / "contract.json").read_text())
        contract["weights"]["sha256"] = hashlib.sha256((folder / target).read_bytes()).hexdigest()
        (folder / "contract.json").write_text(json.dumps(contract))
    try:
        load_exported(folder)
    except NAMED:
        pass


@functools.cache
def manifest_case() -> tuple[Path, dict]:
    from jaxvision.weights import make_manifest, save_keras_weights

    weights = Path(tempfile.mkdtemp()) / "w.weights.h5"
    save_keras_weights(model(), weights)
    return weights, make_manifest(model(), weights, input_shape=(1, 3))


manifest_edits = st.lists(st.tuples(st.sampled_from(["format", "sha256", "tensors", "golden", "file", "input", "shape",
                                                     "seed", "low", "high", "intermediates", "output_channel_means",
                                                     "preprocessing", "dense/kernel"]),
                                    json_values), max_size=3)


@settings(max_examples=EXAMPLES["manifest"], derandomize=True, deadline=30_000, database=None,
          suppress_health_check=list(HealthCheck))
@given(edits=manifest_edits, depth=st.integers(0, 2), as_file=st.sampled_from(["json", "fifo", "dict"]))
def fuzz_manifest(edits, depth, as_file):
    from jaxvision.weights import check_manifest

    counts["manifest"] += 1
    weights, manifest = manifest_case()
    manifest = json.loads(json.dumps(manifest))
    for key, value in edits:  # at the top level, or one or two levels down
        node = manifest
        for _ in range(depth):
            inner = [v for v in node.values() if isinstance(v, dict)] if isinstance(node, dict) else []
            node = inner[0] if inner else node
        if isinstance(node, dict):
            node[key] = value
    source = manifest
    if as_file != "dict":
        source = Path(tempfile.mkdtemp()) / "manifest.json"
        os.mkfifo(source) if as_file == "fifo" else source.write_text(json.dumps(manifest))
    try:
        check_manifest(model(), weights, source)
    except NAMED:
        pass


@functools.cache
def sam_tensors() -> dict:
    return load_torch_state_dict(SAM_TINY)


sam_edits = st.lists(st.tuples(st.sampled_from(["drop", "add", "reshape"]), st.integers(0, 10 ** 4),
                               st.lists(st.integers(0, 70), max_size=4)), max_size=3)


@settings(max_examples=EXAMPLES["sam"], derandomize=True, deadline=30_000, database=None,
          suppress_health_check=list(HealthCheck))
@given(edits=sam_edits, change=damage, from_file=st.booleans())
def fuzz_sam(edits, change, from_file):
    from jaxvision.models.segment_anything import load_sam, sam_from_state_dict

    counts["sam"] += 1
    if from_file:  # the file itself damaged
        path = Path(tempfile.mkdtemp()) / "sam.pth"
        shutil.copy(SAM_TINY, path)
        damaged(path, change, [])
        try:
            load_sam(path)
        except NAMED:
            pass
        return
    tensors = dict(sam_tensors())
    keys = sorted(tensors)
    for kind, index, shape in edits:
        key = keys[index % len(keys)]
        if kind == "drop":
            tensors.pop(key, None)
        elif kind == "add":  # another block of the encoder or the decoder
            number = (shape or [0])[0]
            tensors[key.replace(".0.", f".{number}.", 1)] = tensors.get(key, np.zeros(1, np.float32))
        else:
            tensors[key] = np.zeros(shape, np.float32)
    try:
        sam_from_state_dict(tensors, source="fuzz.pth")
    except NAMED:
        pass


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    seconds = {}
    for name, fuzz in zip(counts, (fuzz_tfjs, fuzz_hdf5, fuzz_pth, fuzz_checkpoint, fuzz_exported, fuzz_manifest,
                                   fuzz_sam)):
        start = time.perf_counter()
        fuzz()
        seconds[name] = time.perf_counter() - start
    print("fuzz cases per reader:", ", ".join(f"{name} {n} ({seconds[name]:.1f} s)" for name, n in counts.items()),
          f"({sum(counts.values())} in all)")
    Path(sys.argv[1]).write_text(json.dumps(counts))
