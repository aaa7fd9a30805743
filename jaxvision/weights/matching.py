"""Pair the layers of a weight file with a model's layers, check every shape, then assign.

Every reader turns its file into a list of ``FileLayer``; matching is by position
among the layers that hold weights (what Keras's ``load_weights`` does for ``.h5`` files)
or by layer name. Nothing is written into the model until every pair has been checked, so a
failed load leaves the model as it was.
"""

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.weights.model_layers import canonical_variable_name, keras_layers, layer_variables


@dataclasses.dataclass
class FileLayer:
    """One layer as a weight file stores it: its name and its (variable name, array) pairs."""

    name: str
    weights: list[tuple[str, np.ndarray]]


class LoadResult(NamedTuple):
    """What a load did: the model layers loaded, those the file lacked (``missing``) and the
    file's layers the model has no place for (``unexpected``)."""

    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


Pair = tuple[str, nnx.Module, FileLayer]


def _names(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def match_by_order(model: nnx.Module, file_layers: Sequence[FileLayer], source: str) -> list[Pair]:
    """Keras's default for ``.h5``: the k-th layer with weights in the file goes to the k-th
    layer with weights in the model; the counts must agree."""
    ours = list(keras_layers(model).items())
    theirs = [layer for layer in file_layers if layer.weights]
    if len(ours) != len(theirs):
        raise ValueError(
            f"{source}: the file has {len(theirs)} layers with weights but {type(model).__name__} has "
            f"{len(ours)} (loading by order, as Keras does); the file's: {_names([t.name for t in theirs])}; "
            f"the model's: {_names([n for n, _ in ours])}. Is it the same architecture? "
            "Pass by_name=True to load the layers whose names agree.")
    return [(name, layer, file_layer) for (name, layer), file_layer in zip(ours, theirs)]


def match_by_name(model: nnx.Module, file_layers: Sequence[FileLayer]) -> tuple[list[Pair], list[str], list[str]]:
    """Pairs by layer name, and the model layers missing from the file and the file layers
    unknown to the model."""
    ours = keras_layers(model)
    theirs = {layer.name: layer for layer in file_layers if layer.weights}
    pairs = [(name, layer, theirs[name]) for name, layer in ours.items() if name in theirs]
    missing = [name for name in ours if name not in theirs]
    unexpected = [name for name in theirs if name not in ours]
    return pairs, missing, unexpected


def check_complete(model: nnx.Module, source: str, missing: Sequence[str], unexpected: Sequence[str]) -> None:
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match {type(model).__name__}: "
            f"missing from the file: [{_names(list(missing))}]; "
            f"in the file but not in the model: [{_names(list(unexpected))}]. "
            "Pass strict=False to load the layers they share.")


def _pair_variables(name: str, layer: nnx.Module, file_layer: FileLayer, source: str):
    variables = layer_variables(layer)
    ours = [n for n, _ in variables]
    theirs = [canonical_variable_name(layer, n) for n, _ in file_layer.weights]
    if len(ours) != len(theirs):
        raise ValueError(
            f"{source}: layer {name!r} ({type(layer).__name__}) has {len(ours)} weights {ours} but the "
            f"file's layer {file_layer.name!r} has {len(theirs)} {[n for n, _ in file_layer.weights]}")
    if sorted(ours) == sorted(theirs):  # names agree: pair by name, whatever the stored order
        arrays = dict(zip(theirs, (a for _, a in file_layer.weights)))
        return [(n, v, arrays[n]) for n, v in variables]
    return [(n, v, a) for (n, v), (_, a) in zip(variables, file_layer.weights)]


def assign(pairs: Sequence[Pair], source: str) -> None:
    """Check every tensor's shape, then copy them all (cast to each variable's dtype)."""
    checked = []
    for name, layer, file_layer in pairs:
        for var_name, variable, array in _pair_variables(name, layer, file_layer, source):
            if tuple(array.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{source}: shape mismatch for layer {name!r} ({type(layer).__name__}) variable "
                    f"{var_name!r}: the model has {tuple(variable.shape)}, the file's layer "
                    f"{file_layer.name!r} has {tuple(array.shape)}")
            if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
                raise ValueError(f"{source}: layer {file_layer.name!r} holds non-numeric data ({array.dtype})")
            checked.append((variable, array))
    for variable, array in checked:  # only now are (lazy HDF5) arrays read
        variable[...] = jnp.asarray(array.read() if hasattr(array, "read") else array, dtype=variable[...].dtype)
