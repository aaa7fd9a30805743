"""KerasHub preset directories: ``config.json`` (the backbone's config), ``model.weights.h5``
(the backbone, Keras 3 layout) and, for a task such as an image classifier, ``task.weights.h5``
with the head's layers. Each file must be a regular file inside the preset folder (a link out
of it, a FIFO or a device is refused by name)."""

import contextlib
import os
from pathlib import Path

from jaxvision.untrusted import Budget, folder_file, read_json
from jaxvision.weights.hdf5 import open_h5
from jaxvision.weights.keras_v3 import is_keras_v3, read_keras_v3
from jaxvision.weights.matching import FileLayer


def is_kerashub_preset(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file() and (path / "model.weights.h5").is_file()


def read_kerashub_preset(path: str | os.PathLike, stack: contextlib.ExitStack, max_bytes: int | None = None
                         ) -> dict[str, FileLayer]:
    """Path key → layer, the backbone's and (if present) the task head's together; the files
    stay open on ``stack`` until the lazy arrays are read."""
    path = Path(path)
    config = read_json(folder_file(path, "config.json", "KerasHub config"), "KerasHub config")
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'}: not a KerasHub config (not a JSON object)")
    if "Backbone" not in str(config.get("class_name", "")):
        raise ValueError(f"{path / 'config.json'}: class_name {config.get('class_name')!r} is not a KerasHub "
                         "backbone; not a KerasHub preset")
    layers: dict[str, FileLayer] = {}
    for file_name in ("model.weights.h5", "task.weights.h5"):
        if not os.path.lexists(path / file_name):
            continue
        f = stack.enter_context(open_h5(folder_file(path, file_name, "KerasHub weights")))
        if not is_keras_v3(f):
            raise ValueError(f"{path / file_name}: no 'layers' group; not a Keras 3 .weights.h5 file")
        budget = Budget(str(path / file_name), os.path.getsize(path / file_name), max_bytes)
        for key, layer in read_keras_v3(f, path / file_name, budget).items():
            if key in layers:
                raise ValueError(f"{path}: layer key {key!r} is in both model.weights.h5 and task.weights.h5")
            layers[key] = layer
    return layers
