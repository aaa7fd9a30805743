"""Keras 3 ``.keras`` archives (``model.save("x.keras")``, the book's checkpoints): a zip whose
``model.weights.h5`` has the ``.weights.h5`` layout. Only the weights are read; the config
(and any custom code it names) is ignored."""

import io
import os
import zipfile

import h5py

from jaxvision.weights.keras_v3 import is_keras_v3, read_keras_v3
from jaxvision.weights.matching import FileLayer


def is_keras_archive(path: str | os.PathLike) -> bool:
    return str(path).endswith(".keras") and zipfile.is_zipfile(path)


def read_keras_archive(path: str | os.PathLike) -> dict[str, FileLayer]:
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ValueError(f"{path}: not a readable .keras archive with model.weights.h5: {e}") from None
    with h5py.File(io.BytesIO(data), "r") as f:
        if not is_keras_v3(f):
            raise ValueError(f"{path}: its model.weights.h5 has no 'layers' group")
        return read_keras_v3(f, path)
