"""Where datasets live, and a small verified downloader.

Data is looked up under ``data_root()``: ``$JAXVISION_DATA`` when set (CI points it at the
shared offline copies), else ``~/.cache/jaxvision``. ``fetch`` downloads one file with
``urllib`` (trying mirrors in order) into a temporary file next to the destination, checks
its sha256 and only then renames it into place, so an interrupted download never leaves a
half-written file where a loader would find it.
"""

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 20


def data_root() -> Path:
    """``$JAXVISION_DATA`` if set, else ``~/.cache/jaxvision``."""
    env = os.environ.get("JAXVISION_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jaxvision"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    url_list: str | Sequence[str],
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download ``dest`` from the first URL in ``url_list`` that works; returns ``dest``.

    An existing ``dest`` is kept as is. The download goes to a temporary file in
    ``dest``'s folder, is checked against ``sha256`` (hex, of the downloaded bytes; ``None``
    skips the check), then renamed atomically. Every URL gets ``timeout`` seconds per
    network operation, so being offline fails fast instead of hanging.

    Raises:
        RuntimeError: no URL gave a file with the right checksum; the message lists each URL
            with its error and says where to put the file by hand.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    urls = [url_list] if isinstance(url_list, str) else list(url_list)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. a read-only shared data folder
        raise RuntimeError(f"cannot create {dest.parent} to download {dest.name} into: {e}") from e
    errors = []
    for url in urls:
        try:
            _download_verified(url, dest, sha256, timeout)
            return dest
        except Exception as e:  # any failure moves on to the next mirror
            errors.append(f"  {url}: {type(e).__name__}: {e}")
    expected = f" (sha256 {sha256})" if sha256 else ""
    raise RuntimeError(
        f"could not download {dest.name}; tried:\n" + "\n".join(errors) + "\n"
        f"Without network access, copy the file{expected} to {dest} by hand, or point "
        "JAXVISION_DATA at a folder that has it."
    )


def _download_verified(url: str, dest: Path, sha256: str | None, timeout: float) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(f"sha256 mismatch: got {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
