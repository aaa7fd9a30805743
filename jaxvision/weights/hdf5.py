"""Open an HDF5 file for reading with a clear error when it is not one (truncated or foreign)."""

import os

import h5py


def open_h5(path: str | os.PathLike) -> h5py.File:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as e:  # h5py's message for truncated files and non-HDF5 bytes
        raise ValueError(f"{path} is not a readable HDF5 weights file (truncated or not HDF5): {e}") from None


def decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
