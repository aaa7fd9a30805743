"""Property fuzz of the untrusted-file readers, run by ``test_untrusted_fuzz.py`` in a subprocess
whose address space is capped (``RLIMIT_AS``), so a reader that allocates what a small file
declares dies with ``MemoryError`` instead of taking the machine. For every generated file the
reader must return or raise ``ValueError``/``FileNotFoundError`` (named errors), within the
per-case deadline, and never return bytes of the secret file that sits beside the folder.

Run: FUZZ_EXAMPLES=500 python tests/fuzz_untrusted_run.py OUT_JSON
"""

import json
import os
import resource
import sys
import tempfile
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
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

SECRET = np.full(16, 7.25, "<f4").tobytes()  # 64 bytes: exactly dense/kernel + dense/bias
NAMED = (ValueError, FileNotFoundError)
counts = {"tfjs": 0, "hdf5": 0, "pth": 0}


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


@settings(max_examples=EXAMPLES, derandomize=True, deadline=5000, database=None,
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


@settings(max_examples=EXAMPLES, derandomize=True, deadline=5000, database=None,
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


@settings(max_examples=EXAMPLES, derandomize=True, deadline=5000, database=None,
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


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    fuzz_tfjs()
    fuzz_hdf5()
    fuzz_pth()
    Path(sys.argv[1]).write_text(json.dumps(counts))
