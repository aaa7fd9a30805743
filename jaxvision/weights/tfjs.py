"""TensorFlow.js layers models: ``model.json`` (Keras config + ``weightsManifest``) and binary shards.

Each manifest group names its shard files (concatenated in order) and its weights, packed one
after another, little-endian. Names are Keras's ``<layer>/<variable>``. Quantized weights
(``quantization`` with ``min``/``scale``, or float16) are expanded to float32.
"""

import json
import math
import os
from pathlib import Path

import numpy as np

from jaxvision.weights.matching import FileLayer

DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "|b1", "float16": "<f2", "uint8": "|u1", "uint16": "<u2"}


def is_tfjs(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path.is_dir() and (path / "model.json").is_file()) or (path.is_file() and path.suffix == ".json")


def _read_json(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable TF.js model.json: {e}") from None
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
    if quant and "scale" in quant:
        array = array.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
    return array.astype(np.float32) if stored == "float16" or quant else array.copy()


def read_tfjs(path: str | os.PathLike) -> list[FileLayer]:
    """The model's layers with weights, in config order (manifest order for unknown layers)."""
    path = Path(path)
    model_json = path / "model.json" if path.is_dir() else path
    spec = _read_json(model_json)
    arrays: dict[str, list[tuple[str, np.ndarray]]] = {}
    for group in spec["weightsManifest"]:
        data = b""
        for shard in group["paths"]:
            shard_path = model_json.parent / shard
            if not shard_path.is_file():
                raise FileNotFoundError(f"{model_json}: weight shard {shard_path} is missing")
            data += shard_path.read_bytes()
        offset = 0
        for entry in group["weights"]:
            stored = (entry.get("quantization") or entry)["dtype"]
            size = math.prod(entry["shape"]) * np.dtype(DTYPES.get(stored, "<f4")).itemsize
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
