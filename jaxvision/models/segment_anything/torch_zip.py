"""Read a torch ``state_dict`` saved by ``torch.save`` (zip format) without torch and without
unpickling anything but tensors.

The archive holds ``<name>/data.pkl`` (the pickled dict), ``<name>/data/<key>`` (raw tensor
storages) and ``<name>/byteorder``. The pickle may only name the globals a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the storage types); any
other global, e.g. ``os.system`` in a malicious file, is refused *before* it is called.
"""

import collections
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(ValueError):
    """The pickle names a global outside the allowed set; nothing was executed."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_ignored) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` on NumPy: a strided view of the flat storage, copied."""
    if not (isinstance(storage, np.ndarray) and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))
            and len(size) == len(stride)):
        raise ValueError(f"malformed tensor record (offset {offset!r}, size {size!r}, stride {stride!r})")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage):
        raise ValueError(f"tensor of size {tuple(size)} and stride {tuple(stride)} overruns its storage")
    if not size:
        return storage[offset].copy()
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride]).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str, path: str):
        super().__init__(file)
        self.archive, self.prefix, self.byteorder, self.path = archive, prefix, byteorder, path
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.path}: refusing to load, the pickle asks for {module}.{name}, which a SAM state_dict "
            "never contains (only tensors, OrderedDict and torch storage types are allowed)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"{self.path}: unexpected persistent id {pid!r} in the pickle")
        _, storage_type, key, _location, numel = pid
        if key not in self.storages:
            try:
                raw = self.archive.read(f"{self.prefix}data/{key}")
            except KeyError:
                raise ValueError(f"{self.path}: storage data/{key} is missing from the archive") from None
            dtype = storage_type.dtype.newbyteorder("<" if self.byteorder == "little" else ">")
            if len(raw) != numel * dtype.itemsize:
                raise ValueError(f"{self.path}: storage data/{key} has {len(raw)} bytes, expected "
                                 f"{numel} × {dtype.itemsize}")
            self.storages[key] = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype)
        return self.storages[key]


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict as NumPy arrays, by key.

    Raises:
      UnsafeCheckpointError: the pickle names a global other than those a state dict needs.
      ValueError: the file is not a zip archive (e.g. torch's legacy format), is truncated, or
        does not hold a dict of tensors; the message names the file.
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch zip checkpoint (torch.save since 1.6 writes a zip archive); "
                         "the file may be truncated, or in torch's legacy format: re-save it with torch.save")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                raise ValueError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
            prefix = pickles[0][:-len("data.pkl")]
            names = set(archive.namelist())
            byteorder = archive.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
            with archive.open(pickles[0]) as f:
                state = _RestrictedUnpickler(f, archive, prefix, byteorder, path).load()
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # zip, zlib, pickle and record errors alike: the file is not what it claims
        raise ValueError(f"{path}: corrupt or truncated torch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    return dict(state)
