"""Keras 3 ``.keras`` archives (``model.save("x.keras")``, the book's checkpoints): a zip whose
``model.weights.h5`` has the ``.weights.h5`` layout. Only the weights are read; the config
(and any custom code it names) is ignored. The member's declared size is checked against the
budget before anything is decompressed, and decompression stops at that size."""

import contextlib
import os
import zipfile

from jaxvision.untrusted import Budget, read_member, regular_file
from jaxvision.weights.hdf5 import open_h5_bytes
from jaxvision.weights.keras_v3 import is_keras_v3, read_keras_v3
from jaxvision.weights.matching import FileLayer

MEMBER = "model.weights.h5"


def is_keras_archive(path: str | os.PathLike) -> bool:
    return str(path).endswith(".keras") and os.path.isfile(path) and zipfile.is_zipfile(path)


def read_keras_archive(path: str | os.PathLike, stack: contextlib.ExitStack, max_bytes: int | None = None
                       ) -> dict[str, FileLayer]:
    """The archive's layers; its HDF5 member stays open on ``stack`` until the lazy arrays are read."""
    regular_file(path, ".keras archive")
    budget = Budget(str(path), os.path.getsize(path), max_bytes)
    try:
        with zipfile.ZipFile(path) as archive:
            data = read_member(archive, MEMBER, budget)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .keras archive with {MEMBER}: {e}") from None
    f = stack.enter_context(open_h5_bytes(data, f"{path}!{MEMBER}"))
    if not is_keras_v3(f):
        raise ValueError(f"{path}: its {MEMBER} has no 'layers' group")
    # The h5 bytes were charged once as the member; the datasets inside are charged again.
    return read_keras_v3(f, path, Budget(str(path), len(data), max_bytes))
