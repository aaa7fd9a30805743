"""Keras 2 / Keras 3 legacy ``.h5`` weights, the format of the keras.applications releases.

The root (or a full-model file's ``model_weights`` group) lists every layer in model order in
its ``layer_names`` attribute; each layer's group lists its variables in ``weight_names``, in
Keras's order (trainable, then non-trainable), e.g. ``conv1/conv1/kernel:0``.
"""

import os

import h5py
import numpy as np

from jaxvision.weights.hdf5 import decode
from jaxvision.weights.matching import FileLayer


def is_legacy(f: h5py.File) -> bool:
    return "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs)


def read_legacy_h5(f: h5py.File, path: str | os.PathLike) -> list[FileLayer]:
    """Every layer of the file (weightless ones too, with no weights), in file order."""
    group = f["model_weights"] if "layer_names" not in f.attrs else f
    layers = []
    for layer_name in (decode(n) for n in group.attrs["layer_names"]):
        if layer_name not in group:
            raise ValueError(f"{path}: layer {layer_name!r} is listed in layer_names but has no group "
                             "(truncated or damaged file)")
        layer_group = group[layer_name]
        weights = []
        for weight_name in (decode(n) for n in layer_group.attrs.get("weight_names", [])):
            if weight_name not in layer_group:
                raise ValueError(f"{path}: weight {weight_name!r} of layer {layer_name!r} is missing "
                                 "(truncated or damaged file)")
            weights.append((weight_name, np.asarray(layer_group[weight_name])))
        layers.append(FileLayer(layer_name, weights))
    return layers
