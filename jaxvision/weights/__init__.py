"""Keras weight files in and out of jaxvision models whose layers carry Keras names.

``load_keras_weights(model, path)`` reads, whatever the format:

* a Keras 2/3 legacy ``.h5`` (weights only, or a full model's ``model_weights``): by the
  order of the layers with weights as Keras does, or ``by_name=True``;
* a Keras 3 ``.weights.h5``: by class-and-position key as Keras does, or ``by_name=True``
  (the names Keras 3.15 records);
* a Keras 3 ``.keras`` archive (its ``model.weights.h5``), as ``.weights.h5``;
* a KerasHub preset directory (``config.json`` + ``model.weights.h5`` [+ ``task.weights.h5``]);
* a TF.js layers model (``model.json`` + shards, or its directory): by name, always.

``save_keras_weights(model, path)`` writes a ``.weights.h5`` that Keras 3's
``model.load_weights`` accepts for the same architecture. No format here runs code or
unpickles anything: they are HDF5 datasets, JSON and raw little-endian arrays.

Examples:
    >>> import tempfile, os, numpy as np
    >>> from jaxvision.models import build_model
    >>> model, twin = build_model("mnist_convnet", seed=0), build_model("mnist_convnet", seed=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "mnist.weights.h5")
    >>> save_keras_weights(model, path)
    >>> load_keras_weights(twin, path).missing
    ()
    >>> bool(np.array_equal(model.dense.kernel[...], twin.dense.kernel[...]))
    True
"""

import contextlib
import os
from pathlib import Path

from flax import nnx

from jaxvision.untrusted import Budget
from jaxvision.weights.hdf5 import open_h5
from jaxvision.weights.keras_archive import is_keras_archive, read_keras_archive
from jaxvision.weights.keras_v3 import class_keys, is_keras_v3, read_keras_v3, write_keras_v3
from jaxvision.weights.kerashub import is_kerashub_preset, read_kerashub_preset
from jaxvision.weights.legacy_h5 import is_legacy, read_legacy_h5
from jaxvision.weights.manifest import check_file, check_manifest, make_manifest
from jaxvision.weights.matching import FileLayer, LoadResult, assign, check_complete, match_by_name, match_by_order
from jaxvision.weights.model_layers import keras_layers
from jaxvision.weights.tfjs import is_tfjs, read_tfjs

__all__ = ["LoadResult", "check_manifest", "keras_layers", "load_keras_weights", "make_manifest", "save_keras_weights"]


def _by_key(model: nnx.Module, layers: dict[str, FileLayer], by_name: bool):
    """Keras 3 layout: pair by class-and-position key, or by the recorded layer names."""
    if by_name:
        return match_by_name(model, list(layers.values()))
    ours = keras_layers(model)
    keys = class_keys(model)
    pairs = [(name, ours[name], layers[key]) for name, key in keys.items() if key in layers]
    missing = [f"{name} ({key})" for name, key in keys.items() if key not in layers]
    unexpected = [f"{layers[key].name} ({key})" for key in layers if key not in set(keys.values())]
    return pairs, missing, unexpected


def load_keras_weights(model: nnx.Module, path: str | os.PathLike, by_name: bool = False, *,
                       strict: bool = True, max_bytes: int | None = None,
                       manifest: str | os.PathLike | dict | None = None) -> LoadResult:
    """Load a Keras weight file (any format above) into ``model`` in place.

    Args:
      model: a jaxvision model whose weighted layers carry Keras names.
      path: the file (``.h5``, ``.weights.h5``, ``.keras``, TF.js ``model.json``), or a KerasHub
        preset / TF.js directory.
      by_name: pair layers by name instead of Keras's default for the format.
      strict: raise when the model has layers the file lacks or the other way round (always
        the case when loading by order with different layer counts); else load what matches.
      max_bytes: the most array data the file may make jaxvision read; default a few times
        the file's size (see ``jaxvision.weights.hdf5``; TF.js: the shards' size).
      manifest: a manifest (JSON path or dict,
        [make_manifest][jaxvision.weights.manifest.make_manifest]) the file must match:
        its sha256 is checked before reading, every tensor and the golden pair after loading.

    Returns:
      [LoadResult][jaxvision.weights.matching.LoadResult]: the layers loaded, missing from the file, and unexpected.

    Raises:
      ValueError: a foreign, truncated or malformed file (naming it and the key), a path or
        link that leads outside it, a declared size over the budget, a shape mismatch (naming
        the layer and both shapes) or, with ``strict``, missing / unexpected layers (listing them).
    """
    path = Path(path)
    if manifest is not None:
        manifest = check_file(path, manifest)
    # HDF5 files stay open until assign() has read the (lazy) arrays it paired and checked.
    with contextlib.ExitStack() as stack:
        try:
            pairs, missing, unexpected = _read(model, path, by_name, max_bytes, stack)
            if strict:
                check_complete(model, str(path), missing, unexpected)
            assign(pairs, str(path))
        except (KeyError, TypeError, AttributeError, IndexError, RecursionError, UnicodeError, OSError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{path}: malformed weights file ({type(e).__name__}: {e})") from None
    if manifest is not None:
        check_manifest(model, path, manifest, file_checked=True)
    return LoadResult(tuple(name for name, _, _ in pairs), tuple(missing), tuple(unexpected))


def _read(model: nnx.Module, path: Path, by_name: bool, max_bytes: int | None, stack: contextlib.ExitStack):
    """``(pairs, missing, unexpected)`` from the file, whatever its format."""
    source = str(path)
    if is_tfjs(path):
        return match_by_name(model, read_tfjs(path, max_bytes))
    if is_keras_archive(path):
        return _by_key(model, read_keras_archive(path, stack, max_bytes), by_name)
    if is_kerashub_preset(path):
        return _by_key(model, read_kerashub_preset(path, stack, max_bytes), by_name)
    if path.is_dir():
        raise ValueError(f"{path} is a directory but neither a TF.js model (model.json) nor a KerasHub preset "
                         "(config.json + model.weights.h5)")
    f = stack.enter_context(open_h5(path))
    budget = Budget(source, os.path.getsize(path), max_bytes)
    if is_legacy(f):
        file_layers = read_legacy_h5(f, path, budget)
        if by_name:
            return match_by_name(model, file_layers)
        return match_by_order(model, file_layers, source), [], []
    if is_keras_v3(f):
        return _by_key(model, read_keras_v3(f, path, budget), by_name)
    raise ValueError(f"{path}: an HDF5 file without 'layer_names' or a 'layers' group; not a Keras "
                     f"weights file (top-level keys: {sorted(f.keys())[:10]})")


def save_keras_weights(model: nnx.Module, path: str | os.PathLike) -> None:
    """Write ``model``'s weights as a Keras 3 ``.weights.h5`` (atomically)."""
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"save_keras_weights: the file name must end in .weights.h5 (as Keras requires), got {path}")
    write_keras_v3(model, path)
