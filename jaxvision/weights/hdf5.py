"""The one door to HDF5 weight files: every reader (``.h5``, ``.weights.h5``, ``.keras``
members, KerasHub presets, SAM's KerasHub reader) opens files and reads groups and datasets
through here, so an untrusted file cannot reach outside itself or exhaust memory:

* only regular files are opened (a FIFO or a device is refused before ``open``);
* links are not followed: an external link (another file), a soft link (possibly a loop) and
  a virtual dataset (other files' data) are refused by name, as is a dataset with external
  storage (its bytes live in some other local file);
* group nesting deeper than ``MAX_DEPTH`` is refused (hard-link cycles);
* datasets are read lazily (``LazyDataset``): only those paired with a model layer and
  shape-checked are read at all, so a dataset of a layer the model does not have is never
  read; each one's declared size (or its chunk's, when larger) is charged to a ``Budget`` *before*
  it is read: by default a few times the file's size (Keras stores weights uncompressed, so a
  real file needs 1×), or an explicit ``max_bytes``.
"""

import io
import math
import os

import h5py
import numpy as np

from jaxvision.untrusted import Budget, regular_file

MAX_DEPTH = 32


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open a weights file for reading: a regular file, HDF5, with a clear error otherwise."""
    regular_file(path, "weights file")
    try:
        return h5py.File(path, "r")
    except OSError as e:  # h5py's message for truncated files and non-HDF5 bytes
        raise ValueError(f"{path} is not a readable HDF5 weights file (truncated or not HDF5): {e}") from None


def open_h5_bytes(data: bytes, source: str) -> h5py.File:
    """An HDF5 file held in memory (a ``.keras`` archive's member)."""
    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError as e:
        raise ValueError(f"{source} is not a readable HDF5 file: {e}") from None


def child(group: h5py.Group, name: str, source: str) -> h5py.Group | h5py.Dataset | None:
    """``group[name]`` without following links out of the file; ``None`` when absent."""
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise ValueError(f"{source}: {group.name.rstrip('/')}/{name} is an external link to {link.filename!r}; "
                         "refused (weights must live inside the file)")
    if isinstance(link, h5py.SoftLink):
        raise ValueError(f"{source}: {group.name.rstrip('/')}/{name} is a soft link to {link.path!r}; refused")
    node = group[name]
    depth = node.name.count("/")
    if depth > MAX_DEPTH:
        raise ValueError(f"{source}: groups nested deeper than {MAX_DEPTH} levels at {node.name[:200]}; refused "
                         "(a link cycle?)")
    return node


def children(group: h5py.Group, source: str) -> list[tuple[str, h5py.Group | h5py.Dataset]]:
    """The members of ``group`` (see ``child``), in HDF5's order."""
    return [(name, child(group, name, source)) for name in group.keys()]


class LazyDataset:
    """A dataset's shape and dtype now (its storage checked to be inside the file, its data
    numeric), its values on ``read``, once its declared size fits the budget. Valid while
    its file is open."""

    def __init__(self, dataset: h5py.Dataset, budget: Budget):
        source = budget.source
        if dataset.is_virtual:
            raise ValueError(f"{source}: {dataset.name} is a virtual dataset (data from other files); refused")
        if dataset.external:
            raise ValueError(f"{source}: {dataset.name} stores its data in external file(s) "
                             f"{[e[0] for e in dataset.external]}; refused")
        if dataset.dtype.kind not in "biuf":
            raise ValueError(f"{source}: {dataset.name} holds non-numeric data ({dataset.dtype})")
        self.dataset, self.budget = dataset, budget
        self.shape, self.dtype = tuple(dataset.shape), dataset.dtype

    def read(self) -> np.ndarray:
        """The values, once the larger of their size and one chunk's (HDF5 inflates a whole
        chunk to read any of it: a small bias in one huge gzip chunk) fits the budget."""
        nbytes = math.prod(self.shape) * self.dtype.itemsize
        chunk = math.prod(self.dataset.chunks) * self.dtype.itemsize if self.dataset.chunks else 0
        self.budget.take(max(nbytes, chunk), self.dataset.name if chunk <= nbytes else
                         f"{self.dataset.name} (chunks of {list(self.dataset.chunks)})")
        return self.dataset[()]


def read_dataset(dataset: h5py.Dataset, budget: Budget) -> np.ndarray:
    """A dataset's values now (see ``LazyDataset``)."""
    return LazyDataset(dataset, budget).read()


def decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
