"""MNIST IDX loader: synthetic good and damaged files, offline fallback, sample, real data."""

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from jaxvision.data import load_mnist, load_mnist_or_sample, load_mnist_sample
from jaxvision.data.mnist import FILES

NAMES = list(FILES)  # train images, train labels, test images, test labels


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_set(folder: Path, n_train: int = 5, n_test: int = 3, *, gz: bool = True, edit=None) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        NAMES[0]: rng.integers(0, 256, (n_train, 28, 28)), NAMES[1]: rng.integers(0, 10, n_train),
        NAMES[2]: rng.integers(0, 256, (n_test, 28, 28)), NAMES[3]: rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = _idx(FILES[name][0], array)
        if edit is not None:
            raw = edit(name, raw)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_good_synthetic_files_load_exactly(tmp_path, gz):
    arrays = _write_set(tmp_path, gz=gz)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path, download=False, verify=False)
    for got, name in zip((x_train, y_train, x_test, y_test), NAMES):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[name])
    assert x_train.shape == (5, 28, 28) and y_test.shape == (3,)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.* sha256 .* not a known MNIST file"):
        load_mnist(tmp_path, download=False)  # verify=True knows only the real files


def test_truncated_idx_is_named(tmp_path):
    _write_set(tmp_path, edit=lambda name, raw: raw[:-100] if name == NAMES[2] else raw)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: truncated, 2268 bytes .* needs 2368"):
        load_mnist(tmp_path, download=False, verify=False)


def test_truncated_gzip_stream_is_named(tmp_path):
    _write_set(tmp_path)
    path = tmp_path / f"{NAMES[0]}.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not a readable gzip file"):
        load_mnist(tmp_path, download=False, verify=False)


def test_corrupt_gzip_data_is_named(tmp_path):
    """Found by fuzzing: a damaged deflate stream raised a raw zlib.error."""
    _write_set(tmp_path)
    path = tmp_path / f"{NAMES[0]}.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03c`\xe0\x00f\x80\x00\x19\x10\x06\x00a\x1f9\xd3\x10\x00\x00\x00")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not a readable gzip file \(error: Error -3 "
                                         r"while decompressing data: invalid distance too far back\)"):
        load_mnist(tmp_path, download=False, verify=False)


def test_unreadable_raw_file_is_named_as_unreadable(tmp_path):
    """A raw IDX file that cannot be read is not reported as a bad gzip file."""
    _write_set(tmp_path, gz=False)
    path = tmp_path / NAMES[1]
    real_open = open

    def guarded(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    with mock.patch("jaxvision.data.mnist.open", guarded, create=True):
        with pytest.raises(ValueError, match=rf"{path}: cannot read it \(PermissionError: .*Permission denied"):
            load_mnist(tmp_path, download=False, verify=False)


def test_wrong_magic_and_count_mismatch(tmp_path):
    wrong_magic = (2051).to_bytes(4, "big")  # the images' magic on the test labels
    _write_set(tmp_path, edit=lambda name, raw: wrong_magic + raw[4:] if name == NAMES[3] else raw)
    message = r"t10k-labels-idx1-ubyte\.gz: IDX magic number is 2051, expected 2049"
    with pytest.raises(ValueError, match=message):
        load_mnist(tmp_path, download=False, verify=False)
    _write_set(tmp_path / "b", edit=lambda name, raw: _idx(2049, np.zeros(4)) if name == NAMES[1] else raw)
    with pytest.raises(ValueError, match="train in .*: 5 images but 4 labels"):
        load_mnist(tmp_path / "b", download=False, verify=False)


def test_offline_gives_clear_error_and_sample_fallback(tmp_path, monkeypatch):
    timeouts = []

    def offline(url, timeout=None):
        timeouts.append(timeout)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path / "mnist")
    message = str(info.value)
    for name in NAMES:
        assert f"{name}.gz" in message
    assert str(tmp_path / "mnist") in message and "no network" in message and "by hand" in message
    assert len(timeouts) == 8 and all(t is not None and t > 0 for t in timeouts)  # 4 files x 2 mirrors
    assert list((tmp_path / "mnist").iterdir()) == []  # no partial files left behind

    ((x, y), (xt, yt)), source = load_mnist_or_sample(tmp_path / "mnist")
    assert x.shape == (10_000, 28, 28) and xt.shape == (2_000, 28, 28)
    assert source.startswith("MNIST sample") and "unavailable" in source


def test_download_writes_verified_files(tmp_path, monkeypatch):
    """A mirror served from disk through the real urlopen (file:// URLs)."""
    mirror = tmp_path / "mirror"
    arrays = _write_set(mirror)
    shas = {name: hashlib.sha256((mirror / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES}
    monkeypatch.setattr("jaxvision.data.mnist.MIRRORS", ("file:///nonexistent/", mirror.as_uri() + "/"))
    monkeypatch.setattr("jaxvision.data.mnist.FILES", {n: (m, shas[n], d) for n, (m, _, d) in FILES.items()})
    (x_train, _), _ = load_mnist(tmp_path / "dest", verify=False)
    np.testing.assert_array_equal(x_train, arrays[NAMES[0]])
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(f"{n}.gz" for n in NAMES)


def test_sample_shapes_and_labels():
    (x, y), (xt, yt) = load_mnist_sample()
    assert (x.shape, y.shape, xt.shape, yt.shape) == ((10_000, 28, 28), (10_000,), (2_000, 28, 28), (2_000,))
    assert x.dtype == y.dtype == np.uint8
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x.max() == 255 and x.min() == 0 and set(np.unique(y).tolist()) == set(range(10))


REAL = Path(os.environ.get("JAXVISION_DATA", "/nonexistent")) / "mnist"


@pytest.mark.skipif(not REAL.is_dir(), reason="JAXVISION_DATA is unset or has no mnist/ folder")
def test_real_mnist_matches_the_readme():
    (x, y), (xt, yt) = load_mnist()  # verify=True: checks the decompressed sha256s
    assert x.shape == (60_000, 28, 28) and xt.shape == (10_000, 28, 28)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(x.mean() - 33.317) < 1e-3 and abs(x.std() - 78.601) < 1e-3
    (xs, ys), (xts, yts) = load_mnist_sample()  # the sample is the head of this set
    np.testing.assert_array_equal(xs, x[:10_000])
    np.testing.assert_array_equal(xts, xt[:2_000])
    assert load_mnist_or_sample()[1] == f"full MNIST from {REAL}"
