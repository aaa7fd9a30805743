"""Self-checking weights: a small JSON *manifest* that travels with a weight file and says what
loading it must produce.

A manifest holds the file's sha256, the preprocessing the model expects, every tensor the
file maps into the model (name, shape, sha256 of its values — BatchNorm moving statistics
included) and a golden pair: a seeded input and, for it, the per-channel mean of the output
and the mean and standard deviation of every named intermediate. [check_manifest][jaxvision.weights.check_manifest]
verifies all of it after a load, so a swapped or corrupted file, a tensor that was not
loaded, or a converter that computes something else is a ``ValueError`` naming the file, the
tensor or the first layer whose statistics diverge.

Examples:
    >>> import tempfile, os
    >>> from jaxvision.models import build_model
    >>> from jaxvision.weights import save_keras_weights
    >>> model = build_model("mnist_convnet")
    >>> path = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
    >>> save_keras_weights(model, path)
    >>> manifest = make_manifest(model, path, input_shape=(1, 28, 28, 1))
    >>> check_manifest(model, path, manifest)  # silent: everything as recorded
    >>> model.dense.bias[...] = model.dense.bias[...] + 1.0
    >>> check_manifest(model, path, manifest)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: ...m.weights.h5: tensor dense/bias does not hold the manifest's values (not loaded, or altered after loading)
"""

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.base import Model
from jaxvision.untrusted import checked_tree, read_json, regular_file

FORMAT = "jaxvision.manifest/1"
RTOL = 1e-5
MAX_GOLDEN_ELEMENTS = 1 << 24  # a golden input is one image (Xception's 299² × 3 is 268,203)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's files (TF.js, KerasHub presets) by sorted name."""
    path = Path(path)
    if path.is_dir():  # only regular files, no link: nothing outside the folder is read, nothing blocks
        checked_tree(path, "weights folder")
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        files = [regular_file(path, "weights file")]
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _tensors(model: nnx.Module) -> dict[str, dict]:
    _, weights, _ = nnx.split(model, nnx.Any(nnx.Param, nnx.BatchStat), ...)
    out = {}
    for path, variable in nnx.to_flat_state(weights):
        value = np.ascontiguousarray(np.asarray(variable.get_value(), np.float32))
        out["/".join(map(str, path))] = {"shape": list(value.shape), "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    return out


def _golden_input(spec: Mapping) -> np.ndarray:
    x = np.random.default_rng(spec["seed"]).uniform(spec["low"], spec["high"], spec["shape"]).astype(np.float32)
    pre = spec.get("preprocessing") or {}
    return x * np.float32(pre.get("scale", 1.0)) + np.float32(pre.get("offset", 0.0))


def _fingerprint(model: Model, x: np.ndarray) -> tuple[list[float], dict[str, list[float]]]:
    view = nnx.merge(*nnx.split(model))
    view.eval()
    output, taps = view.intermediates(jnp.asarray(x))
    output = np.asarray(output, np.float64)
    channel_means = output.reshape(-1, output.shape[-1]).mean(axis=0)
    stats = {name: [float(np.mean(np.asarray(v, np.float64))), float(np.std(np.asarray(v, np.float64)))]
             for name, v in taps.items()}
    return channel_means.tolist(), stats


def make_manifest(model: nnx.Module, weights_path: str | os.PathLike, *, input_shape: tuple[int, ...] | None,
                  preprocessing: Mapping | None = None, low: float = 0.0, high: float = 255.0, seed: int = 0,
                  out: str | os.PathLike | None = None) -> dict:
    """The manifest of ``weights_path`` as loaded into ``model`` (written to ``out`` as JSON).

    Args:
      model: the jaxvision model holding the file's weights.
      weights_path: the file (or TF.js / KerasHub folder) the weights came from.
      input_shape: the golden input's shape, e.g. ``(1, 128, 128, 3)``; ``None`` for a model
        without named intermediates (e.g. Segment Anything): file and tensors only.
      preprocessing: ``{"scale": s, "offset": o}`` applied to the uniform ``[low, high)`` input
        (MobileNet: ``{"scale": 1 / 127.5, "offset": -1}``); recorded for users too.
      seed: of the golden input.
    """
    manifest = {"format": FORMAT, "file": Path(weights_path).name, "sha256": file_sha256(weights_path),
                "tensors": _tensors(model), "golden": None}
    if input_shape is not None:
        spec = {"seed": seed, "shape": list(input_shape), "low": low, "high": high,
                "preprocessing": dict(preprocessing or {})}
        output, stats = _fingerprint(model, _golden_input(spec))
        manifest["golden"] = {"input": spec, "output_channel_means": output, "intermediates": stats}
    if out is not None:
        Path(out).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_shape(value) -> bool:
    return isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)


def _problem(manifest: Mapping) -> str | None:
    """What is malformed in a manifest (``None``: nothing), field by field, so that checking
    it later cannot fail with a ``KeyError`` or allocate what a field declares."""
    if manifest.get("format") != FORMAT:
        return f"format {manifest.get('format')!r:.80} is not {FORMAT}"
    if not isinstance(manifest.get("sha256"), str):
        return "sha256 must be a string"
    tensors = manifest.get("tensors")
    if not (isinstance(tensors, Mapping) and all(
            isinstance(t, Mapping) and _is_shape(t.get("shape")) and isinstance(t.get("sha256"), str)
            for t in tensors.values())):
        return "tensors must map names to {shape, sha256}"
    golden = manifest.get("golden")
    if golden is None:
        return None
    spec = golden.get("input") if isinstance(golden, Mapping) else None
    if not (isinstance(spec, Mapping) and isinstance(spec.get("seed"), int) and _is_shape(spec.get("shape"))
            and _is_number(spec.get("low")) and _is_number(spec.get("high"))
            and isinstance(spec.get("preprocessing", {}), (Mapping, type(None)))
            and all(_is_number(v) for v in (spec.get("preprocessing") or {}).values())):
        return "golden.input must be {seed, shape, low, high, preprocessing}"
    if math.prod(spec["shape"]) > MAX_GOLDEN_ELEMENTS:
        return f"golden input shape {spec['shape']} has more than {MAX_GOLDEN_ELEMENTS:,} elements"
    means, stats = golden.get("output_channel_means"), golden.get("intermediates")
    if not (isinstance(means, list) and all(map(_is_number, means)) and isinstance(stats, Mapping)
            and all(isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)) for v in stats.values())):
        return "golden output_channel_means and intermediates must be numbers"
    return None


def read_manifest(manifest: str | os.PathLike | Mapping) -> dict:
    """A manifest from a JSON file (a regular file, see
    ``jaxvision.untrusted.read_json``) or a dict, every field checked: a malformed
    one is a ``ValueError`` naming the manifest."""
    source = "manifest" if isinstance(manifest, Mapping) else f"manifest {manifest}"
    if not isinstance(manifest, Mapping):
        manifest = read_json(manifest, "manifest")
    problem = _problem(manifest) if isinstance(manifest, Mapping) else "not a JSON object"
    if problem:
        raise ValueError(f"{source}: not a jaxvision manifest ({problem})")
    return dict(manifest)


def check_file(weights_path: str | os.PathLike, manifest: str | os.PathLike | Mapping) -> dict:
    """The manifest, once ``weights_path`` is known to be the file it describes."""
    manifest = read_manifest(manifest)
    found = file_sha256(weights_path)
    if found != manifest["sha256"]:
        raise ValueError(f"{weights_path}: sha256 {found} is not the manifest's {manifest['sha256']} (for "
                         f"{manifest.get('file')!r}): a swapped or corrupted file")
    return manifest


def _close(ours: float, theirs: float, scale: float) -> bool:
    return abs(ours - theirs) <= RTOL * (abs(theirs) + scale) + 1e-12


def check_manifest(model: nnx.Module, weights_path: str | os.PathLike, manifest: str | os.PathLike | Mapping, *,
                   file_checked: bool = False) -> None:
    """Check that ``model``, loaded from ``weights_path``, is what ``manifest`` records: the
    file (unless ``file_checked``), every tensor, then the golden pair. ``ValueError`` names
    what differs: the file, the tensor, or the first layer whose statistics diverge on the
    golden input."""
    manifest = read_manifest(manifest) if file_checked else check_file(weights_path, manifest)
    ours = _tensors(model)
    for name, expected in manifest["tensors"].items():
        if name not in ours:
            raise ValueError(f"{weights_path}: the model has no tensor {name} that the manifest maps")
        if ours[name]["shape"] != expected["shape"]:
            raise ValueError(f"{weights_path}: tensor {name} has shape {ours[name]['shape']}, the manifest "
                             f"{expected['shape']}")
        if ours[name]["sha256"] != expected["sha256"]:
            raise ValueError(f"{weights_path}: tensor {name} does not hold the manifest's values (not loaded, or "
                             "altered after loading)")
    golden = manifest["golden"]
    if golden is None:
        return
    try:
        output, stats = _fingerprint(model, _golden_input(golden["input"]))
    except Exception as e:  # a golden input the model cannot take (a shape from another model)
        raise ValueError(f"{weights_path}: the manifest's golden input {golden['input']['shape']} does not fit the "
                         f"model ({type(e).__name__}: {str(e)[:200]})") from None
    expected_output = np.asarray(golden["output_channel_means"])
    scale = float(np.max(np.abs(expected_output))) if expected_output.size else 0.0
    if len(output) == len(expected_output) and all(_close(a, b, scale) for a, b in zip(output, expected_output)):
        return
    for name, (mean, std) in golden["intermediates"].items():
        if name not in stats:
            raise ValueError(f"{weights_path}: the golden output differs and layer {name} of the manifest is missing")
        if not (_close(stats[name][0], mean, std) and _close(stats[name][1], std, std)):
            raise ValueError(f"{weights_path}: the golden output differs from the manifest's; first diverging layer: "
                             f"{name} (mean {stats[name][0]:.6g} vs {mean:.6g}, std {stats[name][1]:.6g} vs {std:.6g})")
    raise ValueError(f"{weights_path}: the golden output differs from the manifest's, though every layer's "
                     "statistics agree")
