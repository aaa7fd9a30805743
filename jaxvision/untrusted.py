"""Reading files from strangers: checks shared by every reader of weights, checkpoints,
datasets and images (see SECURITY.md).

* ``regular_file``: only regular files are opened, so a FIFO or a device named as a
  weights file, a checkpoint or an image never blocks or streams without end;
* ``checked_tree`` and ``folder_file``: a folder a loader reads (a checkpoint, a
  preset) holds only regular files and directories, and never a link out of it;
* ``Budget``: what a file declares (array shapes, member sizes, pixel counts) is charged
  against a cap proportional to the file's size *before* anything is allocated.
"""

import json
import os
import stat
import zipfile
from pathlib import Path

EXPANSION = 4  # declared bytes allowed per byte of file (real weight files need about 1)
SLACK = 1 << 20  # small files may carry a little more (headers are not data)


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is an existing regular file (symlinks resolved); a named error otherwise.
    Checked before opening, so a FIFO or a device never blocks or streams forever."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read: {e}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{what} {path} is not a regular file (a FIFO, a device or a directory); refused")
    return path


MAX_TREE_ENTRIES = 100_000  # a checkpoint folder holds tens of files


def checked_tree(root: str | os.PathLike, what: str = "folder") -> int:
    """The total size of the regular files under ``root``, once every entry is known to be a
    directory or a regular file, none a symbolic link (checked with ``lstat``, nothing opened):
    a FIFO or a device would hang or stream, a link would read another file.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); (root / "a").mkdir(); _ = (root / "a" / "x").write_bytes(b"123")
        >>> checked_tree(root)
        3
        >>> os.symlink("/etc/hostname", root / "a" / "y"); checked_tree(root, "checkpoint")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: checkpoint ...: a/y is a symbolic link; refused (a checkpoint holds its own files)
    """
    root = Path(root)
    total, pending, seen = 0, [root], 0
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            if folder == root:
                raise ValueError(f"{what} {root} does not exist") from None
            continue  # removed while walked, like a vanished entry below
        except OSError as e:
            raise ValueError(f"{what} {root}: {folder} cannot be listed: {e}") from None
        for entry in entries:
            seen += 1
            if seen > MAX_TREE_ENTRIES:
                raise ValueError(f"{what} {root}: more than {MAX_TREE_ENTRIES:,} entries; refused")
            name = Path(entry.path).relative_to(root)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:  # removed while walked (orbax clearing an unfinished write): never read
                continue
            if stat.S_ISLNK(mode):
                raise ValueError(f"{what} {root}: {name} is a symbolic link; refused (a {what} holds its own files)")
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
            elif stat.S_ISREG(mode):
                total += entry.stat(follow_symlinks=False).st_size
            else:
                raise ValueError(f"{what} {root}: {name} is not a regular file (a FIFO, a device or a socket); refused")
    return total


def folder_file(folder: str | os.PathLike, name: str, what: str = "file") -> Path:
    """``folder / name`` if it is a regular file inside ``folder`` once links are resolved (a
    link may point within the folder, never out of it); a named error otherwise."""
    folder = Path(folder)
    path = folder / name
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise ValueError(f"{what} {path} resolves to {resolved}, outside {folder}; refused")
    regular_file(path, what)
    return path


MAX_JSON_BYTES = 64 << 20  # a TF.js model.json with its Keras config is a few MB


def read_json(path: str | os.PathLike, what: str = "JSON file", max_bytes: int = MAX_JSON_BYTES):
    """The JSON value in a regular file of at most ``max_bytes``; anything else (not UTF-8,
    not JSON, numbers of thousands of digits, nesting deep enough to exhaust the stack) is a
    ``ValueError`` naming the file.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "deep.json"; _ = path.write_text("[" * 100_000)
        >>> read_json(path, "config")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: config .../deep.json: not readable JSON (RecursionError: ...)
    """
    path = regular_file(path, what)
    if path.stat().st_size > max_bytes:
        raise ValueError(f"{what} {path}: {path.stat().st_size:,} bytes, more than the {max_bytes:,} allowed")
    try:
        return json.loads(path.read_bytes().decode("utf8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} {path}: not readable JSON ({type(e).__name__}: {str(e)[:200]})") from None


class Budget:
    """Bytes that may still be read from one file: ``EXPANSION`` × its size (plus
    ``SLACK``), or an explicit ``max_bytes``.

    Examples:
        >>> budget = Budget("w.h5", file_size=1000, max_bytes=100)
        >>> budget.take(60, "kernel"); budget.left
        40
        >>> budget.take(60, "bias")
        Traceback (most recent call last):
        ValueError: w.h5: bias declares 60 bytes, more than this file may hold (40 left of its budget; pass max_bytes= to allow more)
    """

    def __init__(self, source: str, file_size: int, max_bytes: int | None = None):
        self.source = source
        self.left = max_bytes if max_bytes is not None else EXPANSION * file_size + SLACK

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise ValueError(f"{self.source}: {what} declares {nbytes:,} bytes, more than this file may hold "
                             f"({self.left:,} left of its budget; pass max_bytes= to allow more)")
        self.left -= nbytes


def read_member(archive: zipfile.ZipFile, name: str, budget: Budget) -> bytes:
    """One member, its declared size charged to ``budget`` first and never exceeded while
    inflating (a zip's declared size can lie)."""
    info = archive.getinfo(name)
    budget.take(info.file_size, f"member {name}")
    with archive.open(info) as member:
        data = member.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ValueError(f"{budget.source}: member {name} inflates to more than its declared "
                         f"{info.file_size:,} bytes; refused")
    return data
