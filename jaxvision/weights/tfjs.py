"""TensorFlow.js layers models: ``model.json`` (Keras config + ``weightsManifest``) and binary shards.

Each manifest group names its shard files (concatenated in order) and its weights, packed one
after another, little-endian. Names are Keras's ``<layer>/<variable>``. Quantized weights
(``quantization`` with ``min``/``scale``, or float16) are expanded to float32.

The manifest is untrusted: a shard path must be a relative path that resolves inside the
folder of ``model.json`` (no ``..``, no absolute path, no symlink out), name a regular file,
and appear once; the shards' total size is the budget the declared weights must fit
(``max_bytes`` to set another); malformed entries are ``ValueError`` naming the file and entry.
"""

import math
import os
from pathlib import Path

import numpy as np

from jaxvision.untrusted import read_json, regular_file
from jaxvision.weights.matching import FileLayer

DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "|b1", "float16": "<f2", "uint8": "|u1", "uint16": "<u2"}


def is_tfjs(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path.is_dir() and (path / "model.json").is_file()) or (path.is_file() and path.suffix == ".json")


def _read_json(path: Path) -> dict:
    spec = read_json(path, "TF.js model.json")
    if not isinstance(spec, dict) or "weightsManifest" not in spec:
        raise ValueError(f"{path}: no weightsManifest; not a TF.js layers model")
    return spec


def _layer_order(spec: dict) -> list[str]:
    """Layer names in the order of the Keras config (a Model/Functional or a Sequential)."""
    config = spec.get("modelTopology", {}).get("model_config", spec.get("modelTopology", {}))
    layers = config.get("config", {})
    layers = layers.get("layers", []) if isinstance(layers, dict) else layers
    return [layer.get("config", {}).get("name", layer.get("name")) for layer in layers if isinstance(layer, dict)]


def _decode(entry: dict, data: bytes, source: str) -> np.ndarray:
    shape = tuple(entry["shape"])
    quant = entry.get("quantization")
    stored = quant["dtype"] if quant else entry["dtype"]
    if stored not in DTYPES:
        raise ValueError(f"{source}: weight {entry['name']!r} has unsupported dtype {stored!r}")
    array = np.frombuffer(data, DTYPES[stored]).reshape(shape)
    if quant and quant["dtype"] != "float16":
        array = array.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
    return array.astype(np.float32) if stored == "float16" or quant else array.copy()


def shard_file(model_json: Path, shard: object) -> Path:
    """The shard's path, if it names a regular file inside ``model_json``'s folder."""
    folder = model_json.parent.resolve()
    if not isinstance(shard, str) or not shard or os.path.isabs(shard) or "\0" in shard:
        raise ValueError(f"{model_json}: weight shard path {shard!r} must be a relative file name")
    resolved = (folder / shard).resolve()
    if not resolved.is_relative_to(folder):
        raise ValueError(f"{model_json}: weight shard {shard!r} resolves to {resolved}, outside {folder}; refused")
    if not resolved.exists():
        raise FileNotFoundError(f"{model_json}: weight shard {folder / shard} is missing")
    return regular_file(resolved, "weight shard")


def _entry(entry: object, model_json: Path) -> tuple[str, tuple[int, ...], str]:
    """``(name, shape, stored dtype)`` of a manifest entry, checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{model_json}: malformed weightsManifest entry {str(entry)[:200]}")
    shape, quant = entry.get("shape"), entry.get("quantization")
    stored = (quant if isinstance(quant, dict) else entry).get("dtype")
    if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                            for n in shape)):
        raise ValueError(f"{model_json}: weight {entry['name']!r} has a malformed shape {shape!r}")
    if stored not in DTYPES:
        raise ValueError(f"{model_json}: weight {entry['name']!r} has unsupported or missing dtype {stored!r}")
    if quant is not None and not (isinstance(quant, dict) and stored in ("uint8", "uint16", "float16") and (
            stored == "float16" or all(isinstance(quant.get(k), (int, float)) and not isinstance(quant.get(k), bool)
                                       and math.isfinite(quant[k]) for k in ("scale", "min")))):
        raise ValueError(f"{model_json}: weight {entry['name']!r} has malformed quantization {str(quant)[:200]} "
                         "(uint8/uint16 with finite numbers scale and min, or float16)")
    return entry["name"], tuple(shape), stored


def read_tfjs(path: str | os.PathLike, max_bytes: int | None = None) -> list[FileLayer]:
    """The model's layers with weights, in config order (manifest order for unknown layers)."""
    path = Path(path)
    model_json = regular_file(path / "model.json" if path.is_dir() else path, "TF.js model.json")
    spec = _read_json(model_json)
    manifest = spec["weightsManifest"]
    if not isinstance(manifest, list) or not all(isinstance(g, dict) and isinstance(g.get("paths"), list)
                                                 and isinstance(g.get("weights"), list) for g in manifest):
        raise ValueError(f"{model_json}: weightsManifest must be a list of {{paths, weights}} groups")
    shards = [shard_file(model_json, shard) for group in manifest for shard in group["paths"]]
    if len(set(shards)) != len(shards):
        raise ValueError(f"{model_json}: a weight shard is listed more than once; refused")
    budget = max_bytes if max_bytes is not None else sum(s.stat().st_size for s in shards)
    arrays: dict[str, list[tuple[str, np.ndarray]]] = {}
    for group in manifest:
        sizes = [shard_file(model_json, shard).stat().st_size for shard in group["paths"]]
        if sum(sizes) > budget:
            raise ValueError(f"{model_json}: shards {group['paths']} exceed max_bytes={budget:,}")
        budget -= sum(sizes)
        data = b"".join(shard_file(model_json, shard).read_bytes() for shard in group["paths"])
        offset = 0
        for entry in group["weights"]:
            _, shape, stored = _entry(entry, model_json)
            size = math.prod(shape) * np.dtype(DTYPES[stored]).itemsize
            if offset + size > len(data):
                raise ValueError(f"{model_json}: shards {group['paths']} hold {len(data)} bytes, too few for "
                                 f"weight {entry['name']!r} (truncated shard?)")
            layer, _, variable = entry["name"].rpartition("/")
            arrays.setdefault(layer, []).append((variable, _decode(entry, data[offset:offset + size], str(model_json))))
            offset += size
        if offset != len(data):
            raise ValueError(f"{model_json}: shards {group['paths']} hold {len(data)} bytes but the manifest "
                             f"describes {offset} (wrong or damaged shard?)")
    order = [name for name in _layer_order(spec) if name in arrays]
    order += [name for name in arrays if name not in order]
    return [FileLayer(name, arrays[name]) for name in order]
