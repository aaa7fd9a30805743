"""Reading files from strangers: checks shared by every reader of weights, checkpoints,
datasets and images (see SECURITY.md).

* ``regular_file``: only regular files are opened, so a FIFO or a device named as a
  weights file, a checkpoint or an image never blocks or streams without end;
* ``Budget``: what a file declares (array shapes, member sizes, pixel counts) is charged
  against a cap proportional to the file's size *before* anything is allocated.
"""

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
