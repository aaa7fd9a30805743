"""Keras 2 / Keras 3 legacy ``.h5`` weights, the format of the keras.applications releases.

The root (or a full-model file's ``model_weights`` group) lists every layer in model order in
its ``layer_names`` attribute; each layer's group lists its variables in ``weight_names``, in
Keras's order (trainable, then non-trainable), e.g. ``conv1/conv1/kernel:0``. A model nested
in the model (ConvNeXt's ``convnext_tiny_stem`` Sequential) is one entry there whose weight
names carry its layers' names, ``convnext_tiny_stem/convnext_tiny_stem_conv/kernel``; it is
read as one layer per nested layer, ``convnext_tiny_stem/convnext_tiny_stem_conv``, the name
and order jaxvision gives a nested model's layers.
"""

import os

import h5py

from jaxvision.untrusted import Budget
from jaxvision.weights.hdf5 import LazyDataset, child, decode
from jaxvision.weights.matching import FileLayer


def is_legacy(f: h5py.File) -> bool:
    return "layer_names" in f.attrs or (isinstance(f.get("model_weights", getlink=True), h5py.HardLink)
                                        and "layer_names" in f["model_weights"].attrs)


def read_legacy_h5(f: h5py.File, path: str | os.PathLike, budget: Budget) -> list[FileLayer]:
    """Every layer of the file (weightless ones too, with no weights), in file order, as
    ``LazyDataset`` s (read only when assigned; keep ``f`` open)."""
    source = str(path)
    group = child(f, "model_weights", source) if "layer_names" not in f.attrs else f
    layers = []
    for layer_name in (decode(n) for n in group.attrs["layer_names"]):
        layer_group = child(group, layer_name, source) if layer_name else None
        if not isinstance(layer_group, h5py.Group):
            raise ValueError(f"{path}: layer {layer_name!r} is listed in layer_names but has no group "
                             "(truncated or damaged file)")
        weights = []
        for weight_name in (decode(n) for n in layer_group.attrs.get("weight_names", [])):
            dataset = _weight(layer_group, weight_name, source)
            if not isinstance(dataset, h5py.Dataset):
                raise ValueError(f"{path}: weight {weight_name!r} of layer {layer_name!r} is missing "
                                 "(truncated or damaged file)")
            weights.append((weight_name, LazyDataset(dataset, budget)))
        layers.extend(_split_nested(layer_name, weights))
    return layers


def _split_nested(layer_name: str, weights: list) -> list[FileLayer]:
    """A nested model's entry as one :class:`FileLayer` per layer inside it (Keras writes each
    layer's trainable then non-trainable weights; grouping keeps that order per layer)."""
    parts = [name.split("/") for name, _ in weights]
    if not weights or not all(len(p) >= 3 and p[0] == layer_name and p[1] != layer_name for p in parts):
        return [FileLayer(layer_name, weights)]
    inner: dict[str, list] = {}
    for p, (_, array) in zip(parts, weights):
        inner.setdefault(p[1], []).append(("/".join(p[2:]), array))
    return [FileLayer(f"{layer_name}/{name}", values) for name, values in inner.items()]


def _weight(group: h5py.Group, name: str, source: str) -> h5py.Dataset | h5py.Group | None:
    """``group[name]`` for a path such as ``conv1/kernel:0``, one link at a time."""
    node = group
    for part in name.split("/"):
        if not isinstance(node, h5py.Group) or not part:
            return None
        node = child(node, part, source)
    return node
