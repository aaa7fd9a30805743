"""Keras 3 ``.weights.h5``: what ``model.save_weights`` writes, and what KerasHub presets hold.

Variables sit at ``layers/<snake_case(class)>[_k]/vars/<i>``, where ``k`` counts the earlier
layers of the same class in the model's layer order; layer names are not in the path (Keras
3.15 records them as a ``name`` attribute of each ``vars`` group). A nested model (a
jaxvision [Model][jaxvision.models.Model] inside another, e.g. the backbone of the book's end-to-end model after listing 8.29) is
its own scope, ``layers/functional/layers/conv2d/vars/0``, named by its Keras class
(``Model.keras_class``: ``Functional``, or ``Sequential``) and counted with its siblings. Reading pairs layers by
that class-and-position key, or by the recorded name; writing produces the same layout, so
Keras's ``model.load_weights`` accepts the file for the same architecture.

A layer that holds weights and also layers (a custom Keras layer's tracked sublayers, a
forked ``SeparableConv2D`` with a nested ``pointwise_bn``) keeps them under its own key, by
attribute name, as Keras 3 does: ``layers/sep_bn/vars/0`` and
``layers/sep_bn/pointwise_bn/vars/0``.
"""

import os
import re

import h5py
import numpy as np
from flax import nnx

from jaxvision.untrusted import Budget
from jaxvision.weights.hdf5 import MAX_DEPTH, LazyDataset, child, children, decode
from jaxvision.weights.matching import FileLayer
from jaxvision.layers.base import sublayers
from jaxvision.models.base import Model
from jaxvision.weights.model_layers import keras_layers, layer_variables


def snake_case(class_name: str) -> str:
    """Keras's ``to_snake_case``: ``Conv2DTranspose`` → ``conv2d_transpose``."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def class_keys(model: nnx.Module) -> dict[str, str]:
    """Model layer name → its path key (``conv2d_3``, ``functional/layers/conv2d``), counting
    per class in layer order within each model; composite layers that are not models (a
    ``ResidualBlock``) are flattened into their model's scope, as Keras's inline layers are."""
    keys: dict[str, str] = {}

    def scope(container: nnx.Module, name_prefix: str, key_prefix: str) -> None:
        counts: dict[str, int] = {}

        def next_key(class_name: str) -> str:
            stem = snake_case(class_name)
            counts[stem] = counts.get(stem, -1) + 1
            return key_prefix + (stem if counts[stem] == 0 else f"{stem}_{counts[stem]}")

        def visit(module: nnx.Module, prefix: str) -> None:
            for key, child in sublayers(module):
                if isinstance(child, Model):
                    scope(child, f"{prefix}{key}/", next_key(child.keras_class) + "/layers/")
                elif layer_variables(child):
                    layer_key = next_key(type(child).__name__)
                    keys[prefix + key] = layer_key
                    tracked(child, f"{prefix}{key}/", layer_key + "/")
                else:
                    visit(child, f"{prefix}{key}/")

        visit(container, name_prefix)

    def tracked(layer: nnx.Module, name_prefix: str, key_prefix: str) -> None:
        """A weighted layer's sublayers, keyed by attribute path as Keras keys a custom layer's."""
        for key, child in sublayers(layer):
            if isinstance(child, Model):
                scope(child, f"{name_prefix}{key}/", f"{key_prefix}{key}/layers/")
                continue
            if layer_variables(child):
                keys[name_prefix + key] = key_prefix + key
            tracked(child, f"{name_prefix}{key}/", f"{key_prefix}{key}/")

    scope(model, "", "")
    return keys


def is_keras_v3(f: h5py.File) -> bool:
    return isinstance(f.get("layers", getlink=True), h5py.HardLink) and isinstance(f["layers"], h5py.Group)


def read_keras_v3(f: h5py.File, path: str | os.PathLike, budget: Budget) -> dict[str, FileLayer]:
    """Path key (``conv2d_3``, or ``outer/layers/conv2d`` when nested) → layer with weights, as
    ``LazyDataset`` s (no links followed; read, and charged to
    ``budget``, only when assigned; keep ``f`` open until then)."""
    found: dict[str, FileLayer] = {}
    source = str(path)

    def walk(group: h5py.Group, prefix: str, owner: str | None) -> None:
        """``group``'s members are layers (a ``layers`` list) or, inside the layer named
        ``owner``, that layer's tracked sublayers by attribute name."""
        if prefix.count("/") > MAX_DEPTH:
            raise ValueError(f"{path}: layers nested deeper than {MAX_DEPTH} levels at {prefix[:200]}; refused "
                             "(a link cycle?)")
        for key, sub in children(group, source):
            if not isinstance(sub, h5py.Group) or key == "vars":
                continue
            if key == "layers":
                walk(sub, f"{prefix}{key}/", None)
                continue
            # A custom layer's sublayer records its own Keras name; by name it is its owner's attribute.
            name = f"{prefix}{key}" if owner is None else f"{owner}/{key}"
            variables = child(sub, "vars", source)
            if isinstance(variables, h5py.Group) and len(variables):
                indices = sorted(variables, key=lambda k: int(k) if k.isdigit() else -1)
                if not all(k.isdigit() for k in indices) or [int(k) for k in indices] != list(range(len(indices))):
                    raise ValueError(f"{path}: {sub.name}/vars holds {indices}, expected 0..n-1 "
                                     "(not a Keras .weights.h5 file?)")
                if owner is None:
                    name = decode(variables.attrs.get("name", name))
                arrays = [(k, child(variables, k, source)) for k in indices]
                if not all(isinstance(a, h5py.Dataset) for _, a in arrays):
                    raise ValueError(f"{path}: {sub.name}/vars holds groups, expected datasets")
                found[f"{prefix}{key}"] = FileLayer(name, [(k, LazyDataset(a, budget)) for k, a in arrays])
            walk(sub, f"{prefix}{key}/", name)

    walk(child(f, "layers", source), "", None)
    return found


def write_keras_v3(model: nnx.Module, path: str | os.PathLike) -> None:
    """Write ``model``'s weights as Keras 3's ``save_weights`` does (weighted layers only)."""
    layers = keras_layers(model)
    tmp = f"{path}.part"
    with h5py.File(tmp, "w") as f:
        f.create_group("vars")
        root = f.create_group("layers")
        for name, key in class_keys(model).items():
            variables = root.require_group(key).require_group("vars")
            variables.attrs["name"] = name.rsplit("/", 1)[-1]
            for i, (_, variable) in enumerate(layer_variables(layers[name])):
                variables.create_dataset(str(i), data=np.asarray(variable[...]))
    os.replace(tmp, path)
