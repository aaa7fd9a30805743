"""Read a torch ``state_dict`` saved by ``torch.save`` (zip format) without torch and without
unpickling anything but tensors.

The archive holds ``<name>/data.pkl`` (the pickled dict), ``<name>/data/<key>`` (raw tensor
storages) and ``<name>/byteorder``. The pickle may only name the globals a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the storage types); any
other global, e.g. ``os.system`` in a malicious file, is refused *before* it is called. Each
allowed global is handed out as a fresh object, so a ``BUILD`` opcode in the pickle can only
change that object, never this module's functions (a later file sees them unchanged).

Declared sizes are checked before anything is allocated: the pickle and every storage member
against a budget of a few times the file's size, each storage's bytes against its declared
element count, every tensor view against its storage (no stride-0 blow-ups) and its bytes
against the same budget (many views of one storage cannot multiply memory), and the pickle's
memo indices against the entries stored so far (a sparse index would size the memo). Unknown byte
orders, bool storages holding values other than 0 and 1, and one storage read with two dtypes
are errors naming the file.
"""

import collections
import io
import math
import os
import pickle
import pickletools
import zipfile

import ml_dtypes
import numpy as np

from jaxvision.untrusted import Budget, read_member, regular_file

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


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_ignored, budget: Budget
                    ) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` on NumPy: a strided view of the flat storage, copied,
    its bytes charged to ``budget`` first (many views of one storage cannot multiply memory)."""
    if not (isinstance(storage, np.ndarray) and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))
            and len(size) == len(stride)):
        raise ValueError(f"malformed tensor record (offset {offset!r}, size {size!r}, stride {stride!r})")
    if math.prod(size) > len(storage):
        raise ValueError(f"tensor of size {tuple(size)} has more elements than its storage ({len(storage)}); "
                         "refused (a zero-stride view would multiply memory)")
    budget.take(math.prod(size) * storage.itemsize, f"tensor of size {tuple(size)}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage):
        raise ValueError(f"tensor of size {tuple(size)} and stride {tuple(stride)} overruns its storage")
    if not size:
        return storage[offset].copy()
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride]).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str, path: str, budget: Budget):
        super().__init__(file)
        self.archive, self.prefix, self.byteorder, self.path, self.budget = archive, prefix, byteorder, path, budget
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict  # a built-in type: its attributes cannot be set
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda *args: _rebuild_tensor(*args, budget=self.budget)  # fresh: BUILD may only mutate this copy
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.path}: refusing to load, the pickle asks for {module}.{name}, which a SAM state_dict "
            "never contains (only tensors, OrderedDict and torch storage types are allowed)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"{self.path}: unexpected persistent id {pid!r} in the pickle")
        _, storage_type, key, _location, numel = pid
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ValueError(f"{self.path}: malformed storage record {pid!r}")
        if key in self.storages:
            if self.storages[key].dtype != storage_type.dtype:
                raise ValueError(f"{self.path}: storage data/{key} is used as {self.storages[key].dtype} and as "
                                 f"{storage_type.dtype}; refused")
            return self.storages[key]
        name = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise ValueError(f"{self.path}: storage data/{key} is missing from the archive") from None
        dtype = storage_type.dtype.newbyteorder("<" if self.byteorder == "little" else ">")
        if info.file_size != numel * dtype.itemsize:
            raise ValueError(f"{self.path}: storage data/{key} has {info.file_size} bytes, expected "
                             f"{numel} × {dtype.itemsize}")
        values = np.frombuffer(read_member(self.archive, name, self.budget), dtype=dtype)
        if dtype == np.bool_ and np.any(values.view(np.uint8) > 1):
            raise ValueError(f"{self.path}: bool storage data/{key} holds values other than 0 and 1")
        self.storages[key] = values.astype(storage_type.dtype)
        return self.storages[key]


def _check_memo(payload: bytes, path: str) -> None:
    """Every memo index a pickle stores to is the next one (as ``pickle`` writes them): the C
    unpickler sizes its memo by the largest index, so one ``LONG_BINPUT 2**27`` in a 257-byte
    file would allocate gigabytes (CPython gh-115952)."""
    stored = 0
    for opcode, arg, _position in pickletools.genops(payload):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if not isinstance(arg, int) or not 0 <= arg <= stored:
                raise ValueError(f"{path}: the pickle stores memo index {arg!r} after {stored} entries; refused "
                                 "(a sparse memo index allocates memory out of proportion to the file)")
            stored = max(stored, arg + 1)
        elif opcode.name == "MEMOIZE":
            stored += 1


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict as NumPy arrays, by key.

    Raises:
      UnsafeCheckpointError: the pickle names a global other than those a state dict needs.
      ValueError: the file is not a zip archive (e.g. torch's legacy format), is truncated, or
        does not hold a dict of tensors; the message names the file.
    """
    path = os.fspath(regular_file(path, "checkpoint"))
    budget = Budget(path, os.path.getsize(path))
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
            byteorder = (read_member(archive, prefix + "byteorder", Budget(path, 0, 16)).decode().strip()
                         if prefix + "byteorder" in names else "little")
            if byteorder not in ("little", "big"):
                raise ValueError(f"byteorder must be 'little' or 'big', got {byteorder[:20]!r}")
            payload = read_member(archive, pickles[0], budget)
            _check_memo(payload, path)
            state = _RestrictedUnpickler(io.BytesIO(payload), archive, prefix, byteorder, path, budget).load()
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # zip, zlib, pickle and record errors alike: the file is not what it claims
        raise ValueError(f"{path}: corrupt or truncated torch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    return dict(state)
