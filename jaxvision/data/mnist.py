"""MNIST as ``keras.datasets.mnist.load_data()`` returns it, read from the four IDX files.

``load_mnist`` reads ``train-images-idx3-ubyte.gz`` & co. (gzipped or not) from ``data_dir``
or ``data_root()/"mnist"``, downloading missing files from a public mirror. Every file is
checked for its IDX header and exact size, and, with ``verify=True``, for the sha256 of its
decompressed bytes: the canonical MNIST digests, plus the rebuilt training images of the
shared offline copy (see the data README). ``load_mnist_sample`` reads a small real sample
shipped in the package, and ``load_mnist_or_sample`` falls back to it when the full set is
missing and cannot be downloaded.

Rebuild the sample with ``python -m jaxvision.data.make_mnist_sample [DATA_DIR]``.
"""

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from jaxvision.data.download import data_root, fetch
from jaxvision.untrusted import regular_file

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# name -> (IDX magic, sha256 of the canonical .gz served by the mirrors, accepted sha256s of
# the decompressed file). The second train-images digest is the shared copy's rebuild.
FILES = {
    "train-images-idx3-ubyte": (
        2051,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "fc73d6b0fc72611a04c5bf01d313944abfa9e82c026dc6e66bfbcfe14f6730ec",
        ),
    ),
    "train-labels-idx1-ubyte": (
        2049,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",),
    ),
    "t10k-images-idx3-ubyte": (
        2051,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",),
    ),
    "t10k-labels-idx1-ubyte": (
        2049,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",),
    ),
}
SAMPLE_PATH = Path(__file__).parent / "assets" / "mnist_sample.npz"
SAMPLE_SIZES = (10_000, 2_000)

Split = tuple[np.ndarray, np.ndarray]


def load_mnist(
    data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True
) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))``: uint8 ``(N, 28, 28)`` images, uint8 labels.

    Raises:
        FileNotFoundError: files are missing and could not be downloaded (the message names
            them and the folder to put them in).
        ValueError: a file is not gzip, is truncated, has the wrong IDX magic or size, or
            (``verify=True``) has unknown content; the message names the file.
    """
    folder = Path(data_dir) if data_dir is not None else data_root() / "mnist"
    paths = {name: _find(folder, name) for name in FILES}
    missing = [name for name, path in paths.items() if path is None]
    if missing and download:
        errors = []
        for name in missing:
            try:
                gz_sha = FILES[name][1]
                paths[name] = fetch([m + name + ".gz" for m in MIRRORS], folder / f"{name}.gz", gz_sha)
            except RuntimeError as e:
                errors.append(str(e))
        if errors:
            raise FileNotFoundError(
                f"MNIST files missing in {folder} and the download failed:\n" + "\n".join(errors)
            )
    elif missing:
        raise FileNotFoundError(
            f"MNIST files missing in {folder}: {', '.join(n + '.gz' for n in missing)}. "
            "Put the four IDX files there, or allow download=True."
        )
    arrays = {}
    for name, (magic, _, digests) in FILES.items():
        arrays[name] = _read_idx(paths[name], magic, digests, verify=verify)
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(x) != len(y):
            raise ValueError(f"MNIST {split} in {folder}: {len(x)} images but {len(y)} labels")
    return (x_train, y_train), (x_test, y_test)


def load_mnist_sample() -> tuple[Split, Split]:
    """The packaged sample: the first 10,000 training and 2,000 test images of MNIST.

    Examples:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist_sample()
        >>> x_train.shape, x_train.dtype, y_test.shape, y_train[:10].tolist()
        ((10000, 28, 28), dtype('uint8'), (2000,), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    """
    with np.load(SAMPLE_PATH) as z:
        return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])


def load_mnist_or_sample(data_dir: str | Path | None = None) -> tuple[tuple[Split, Split], str]:
    """``(data, source)``: the full set when present or downloadable, else the sample.

    ``source`` says which one was loaded and, for the sample, why, so scripts can print it.
    Files that are present but damaged still raise: only absence falls back.
    """
    try:
        data = load_mnist(data_dir)
    except FileNotFoundError as e:
        (x, _), (xt, _) = data = load_mnist_sample()
        reason = str(e).splitlines()[0].rstrip(":")  # one line for the banner; per-URL errors dropped
        return data, (
            f"MNIST sample ({len(x)} train / {len(xt)} test images, packaged with jaxvision) "
            f"because the full set is unavailable: {reason}"
        )
    folder = Path(data_dir) if data_dir is not None else data_root() / "mnist"
    return data, f"full MNIST from {folder}"


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


GZIP_EXPANSION = 64  # MNIST's gzip files inflate about 5×; a bomb is stopped at this ratio


def _read_stream(path: Path, magic: int) -> bytes:
    """The IDX bytes, read incrementally: the header first, then exactly the size it declares
    (plus one byte, to see a file that is too long), never more than ``GZIP_EXPANSION`` × the
    compressed size, so a small gzip bomb cannot inflate into gigabytes."""
    ndim = magic - 2048
    header = 4 + 4 * ndim
    regular_file(path, "MNIST file")
    limit = GZIP_EXPANSION * path.stat().st_size + header if path.suffix == ".gz" else path.stat().st_size
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read(header)
            if len(raw) == header and int.from_bytes(raw[:4], "big") == magic:
                dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
                declared = header + math.prod(dims)
                if declared > limit:
                    raise ValueError(f"{path}: the header declares {dims} ({declared:,} bytes), more than the "
                                     f"file can hold ({limit:,} bytes at most); refused")
                raw += f.read(declared + 1 - header)
            return raw
    # BadGzipFile (an OSError): bad header or CRC; EOFError: cut off; zlib.error: corrupt data.
    except (OSError, EOFError, zlib.error) as e:
        if path.suffix != ".gz":
            raise ValueError(f"{path}: cannot read it ({type(e).__name__}: {e})") from e
        raise ValueError(f"{path}: not a readable gzip file ({type(e).__name__}: {e}); "
                         "delete it and download it again") from e


def _read_idx(path: Path, magic: int, digests: tuple[str, ...], *, verify: bool) -> np.ndarray:
    """Parse one IDX file (big-endian header: magic, then one uint32 per dimension)."""
    raw = _read_stream(path, magic)
    ndim = magic - 2048
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated, {len(raw)} bytes is shorter than the IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: IDX magic number is {found}, expected {magic}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (28, 28):
        raise ValueError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "too long"
        raise ValueError(f"{path}: {problem}, {len(raw)} bytes but the header {dims} needs {expected}")
    if verify:
        digest = hashlib.sha256(raw).hexdigest()
        if digest not in digests:
            raise ValueError(
                f"{path}: decompressed sha256 {digest} is not a known MNIST file "
                f"(expected one of {', '.join(digests)}); pass verify=False to load it anyway"
            )
    array = np.frombuffer(raw, np.uint8, offset=header).reshape(dims)
    if ndim == 1 and array.size and array.max() > 9:
        raise ValueError(f"{path}: label {array.max()} is not a digit 0-9")
    return array.copy()  # writable, like Keras's arrays
