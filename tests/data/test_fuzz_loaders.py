"""The input path under fuzzing (hypothesis, profile in conftest.py): damaged and odd image
files, IDX files, trimaps and folders. Every case must end in the loaded arrays, a
``ValueError`` naming the file and the reason, or (``on_error="skip"``) a warning naming the
skipped file — never another exception, a hang or a dead worker.
"""

import gzip
import io
import os
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image

from jaxvision.data import image_dataset_from_directory, load_mnist, load_oxford_pet, load_pair
from jaxvision.data.image_io import check_decodable, load_rgb
from jaxvision.data.mnist import FILES

# (format, mode, extension): what the loaders meet in the wild, in every format they list.
ENCODINGS = [
    ("PNG", "RGB", ".png"), ("PNG", "RGBA", ".png"), ("PNG", "L", ".png"), ("PNG", "LA", ".png"),
    ("PNG", "P", ".png"), ("PNG", "1", ".png"), ("PNG", "I;16", ".png"),
    ("JPEG", "RGB", ".jpg"), ("JPEG", "L", ".jpeg"), ("JPEG", "CMYK", ".jpg"),
    ("BMP", "RGB", ".bmp"), ("BMP", "P", ".bmp"), ("BMP", "1", ".bmp"), ("BMP", "RGBA", ".bmp"),
    ("GIF", "P", ".gif"), ("GIF", "L", ".gif"),
]
MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"GIF89a", b"\x1f\x8b"]


def encode(fmt: str, mode: str, width: int, height: int, seed: int, *, transparency: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        values = rng.integers(0, 65536, (height, width))
        image = Image.frombytes(mode, (width, height), values.astype("<u2").tobytes())
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
        image = Image.frombytes(mode if mode != "1" else "L", (width, height), pixels.tobytes())
        image = image.convert("1") if mode == "1" else image
    kwargs = {"transparency": 0} if transparency and mode == "P" else {}
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` intact, cut short, with bytes overwritten, or with junk appended."""
    kind = draw(st.sampled_from(["intact", "cut", "flip", "append"]))
    if kind == "cut":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    return data


def decoded_or_named(path: Path) -> np.ndarray | None:
    """The image, checked, or ``None`` after a ``ValueError`` naming the file and why."""
    try:
        image = load_rgb(path)
    except ValueError as e:
        assert str(e).startswith(f"cannot decode image file {path}: ") and len(str(e)) > len(str(path)) + 26
        return None
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 255
    return image


def check_outcome(path: Path) -> np.ndarray | None:
    image = decoded_or_named(path)
    # The quick check of on_error="skip" must agree, or a skipped run still dies on the file.
    problem = check_decodable(path)
    assert (problem is None) == (image is not None), problem
    return image


@given(st.data(), st.sampled_from(ENCODINGS), st.integers(1, 9), st.integers(1, 9), st.booleans())
def test_damaged_images_decode_or_are_named(data, encoding, width, height, transparency):
    fmt, mode, ext = encoding
    original = encode(fmt, mode, width, height, seed=width * 10 + height, transparency=transparency)
    content = data.draw(damaged(original))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{ext}"
        path.write_bytes(content)
        image = check_outcome(path)
    if content == original:
        assert image is not None and image.shape == (height, width, 3)


@given(st.sampled_from(MAGICS), st.binary(max_size=300), st.sampled_from([".jpg", ".png", ".bmp", ".gif"]))
def test_random_bytes_are_named(magic, body, ext):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{ext}"
        path.write_bytes(magic + body)
        check_outcome(path)


def test_zero_byte_file_is_named(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"cannot decode image file {path}: UnidentifiedImageError"):
        load_rgb(path)
    assert check_decodable(path).startswith("UnidentifiedImageError")


# IDX: one of the four MNIST files rewritten with a wrong magic, wrong dims, a wrong
# length or label values, raw or gzipped (and then possibly a damaged gzip stream).
@st.composite
def idx_file(draw) -> tuple[str, bytes, bool]:
    name = draw(st.sampled_from(list(FILES)))
    magic = FILES[name][0]
    ndim = magic - 2048
    count = draw(st.integers(0, 3))
    dims = [count, 28, 28][:ndim]
    if draw(st.booleans()):
        magic = draw(st.one_of(st.sampled_from([0, 2049, 2051, 2052, 0x08030000]), st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        dims = [draw(st.sampled_from([0, 1, 27, 28, 29, 2**31, 2**32 - 1])) for _ in range(ndim)]
    payload_size = int(np.prod(dims, dtype=object)) if max(dims, default=0) < 1000 else draw(st.integers(0, 50))
    payload_size = max(0, payload_size + draw(st.sampled_from([0, 0, 0, -1, 1, -28])))
    high = 255 if ndim == 3 else draw(st.sampled_from([9, 255]))
    payload = np.random.default_rng(payload_size).integers(0, high + 1, payload_size, dtype=np.uint8).tobytes()
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    raw = raw[:draw(st.sampled_from([len(raw), len(raw), 0, 3, 9]))]
    gz = draw(st.booleans())
    if gz:
        raw = draw(damaged(gzip.compress(raw, mtime=0)))
    return name, raw, gz


def write_good_mnist(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for name, (magic, _, _) in FILES.items():
        shape = (2, 28, 28) if magic == 2051 else (2,)
        array = rng.integers(0, 10, shape, dtype=np.uint8)
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
        (folder / name).write_bytes(header + array.tobytes())


@given(idx_file())
def test_idx_files_load_or_are_named(case):
    name, raw, gz = case
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_good_mnist(folder)
        path = folder / (name + ".gz" if gz else name)
        if gz:
            (folder / name).unlink()
        path.write_bytes(raw)
        split = "train" if name.startswith("train") else "t10k"
        try:
            (x_train, y_train), (x_test, y_test) = load_mnist(folder, download=False, verify=False)
        except ValueError as e:  # this file, or its split's image/label counts, named
            assert str(e).startswith((f"{path}: ", f"MNIST {split} in {folder}: ")), str(e)
            return
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (28, 28) and len(x_train) == len(y_train)
    assert y_train.dtype == np.uint8 and y_train.ndim == 1 and (y_train.size == 0 or y_train.max() <= 9)
    assert x_test.shape[1:] == (28, 28) and len(x_test) == len(y_test)


# Trimaps: sizes that differ from the photo's, values outside {1, 2, 3}, every mode, damage.
@given(st.data(), st.sampled_from(["L", "P", "I;16", "RGB", "RGBA", "LA", "1"]),
       st.sampled_from([0, 0, -1, 1]), st.sampled_from([0, 0, -1, 1]),
       st.lists(st.sampled_from([0, 1, 2, 3, 4, 255]), min_size=1, max_size=3))
def test_trimaps_load_or_are_named(data, mode, dw, dh, values):
    width, height = 6, 5
    rng = np.random.default_rng(len(values))
    classes = np.asarray(values)[rng.integers(0, len(values), (height + dh, width + dw))]
    if mode == "I;16":
        mask = Image.frombytes(mode, classes.shape[::-1], classes.astype("<u2").tobytes())
    else:
        mask = Image.fromarray(classes.astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    content = data.draw(damaged(buffer.getvalue()))
    # An intact trimap of the photo's size with values in {1, 2, 3} must load ("1" is 0/255).
    valid = content == buffer.getvalue() and (dw, dh) == (0, 0) and mode != "1" and \
        set(np.unique(classes)) <= {1, 2, 3}
    event("valid trimap" if valid else "invalid or damaged trimap")
    with tempfile.TemporaryDirectory() as folder:
        image_path, mask_path = Path(folder) / "pet.jpg", Path(folder) / "pet.png"
        Image.new("RGB", (width, height), (90, 120, 30)).save(image_path)
        mask_path.write_bytes(content)
        try:
            image, target = load_pair(image_path, mask_path, (4, 4))
        except ValueError as e:
            assert str(mask_path) in str(e) and not valid, str(e)
            return
    assert image.shape == (4, 4, 3) and image.dtype == np.float32
    assert target.shape == (4, 4) and target.dtype == np.uint8 and set(np.unique(target)) <= {0, 1, 2}
    if valid:
        rows, cols = (np.arange(4) * 2 + 1) * height // 8, (np.arange(4) * 2 + 1) * width // 8  # nearest
        np.testing.assert_array_equal(target, classes[rows][:, cols] - 1)


# Folders: good images among zero-byte, random and truncated files, stray non-images,
# a directory with an image's name, a dangling link; class folders may end up imageless.
GOOD_KINDS = ("png", "jpg", "gif")
BAD_KINDS = ("zero", "random", "cut", "dangling")
STRAY_KINDS = ("txt", "dir")


def write_entry(folder: Path, index: int, kind: str) -> Path | None:
    """Write one entry; returns its path when it is an image file the loader will list."""
    folder.mkdir(parents=True, exist_ok=True)
    png = encode("PNG", "RGB", 4, 3, seed=index)
    if kind in GOOD_KINDS:
        path = folder / f"{index}.{kind}"
        Image.open(io.BytesIO(png)).convert("RGB" if kind == "jpg" else "P").save(path)
    elif kind == "zero":
        (path := folder / f"{index}.png").write_bytes(b"")
    elif kind == "random":
        (path := folder / f"{index}.jpg").write_bytes(np.random.default_rng(index).bytes(40))
    elif kind == "cut":
        (path := folder / f"{index}.png").write_bytes(png[: len(png) // 2])
    elif kind == "dangling":
        (path := folder / f"{index}.gif").symlink_to(folder / "nowhere.gif")
    elif kind == "txt":
        (folder / f"{index}.txt").write_text("notes")
        return None
    else:
        (folder / f"{index}.png").mkdir()
        return None
    return path


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(GOOD_KINDS + BAD_KINDS + STRAY_KINDS)),
                min_size=1, max_size=7), st.sampled_from(["raise", "skip"]))
def test_folders_load_or_name_the_bad_file(entries, on_error):
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        listed = {}
        for index, (cls, kind) in enumerate(entries):
            path = write_entry(root / cls, index, kind)
            if path is not None:
                listed[str(path)] = kind in GOOD_KINDS
        classes = sorted({cls for cls, _ in entries})
        empty_classes = [c for c in classes if not any(p.startswith(str(root / c) + os.sep) for p in listed)]
        good = sorted(p for p, ok in listed.items() if ok)
        bad = sorted(p for p, ok in listed.items() if not ok)
        kwargs = dict(image_size=(3, 3), batch_size=4, shuffle=False, on_error=on_error)
        if empty_classes:
            with pytest.raises(ValueError, match=rf"no images in {root / empty_classes[0]} \(allowed extensions"):
                image_dataset_from_directory(root, **kwargs)
            event("a class folder without images: named")
            return
        if on_error == "skip":
            with warnings.catch_warnings(record=True) as caught:  # none, when nothing is bad
                warnings.simplefilter("always")
                try:
                    ds = image_dataset_from_directory(root, **kwargs)
                except ValueError as e:
                    assert not good and str(e) == f"no usable images in {root}"
                    ds = None
            skipped = sorted(str(w.message).split(": cannot decode it")[0].removeprefix("skipping image file ")
                             for w in caught)
            assert skipped == bad
            event(f"skip: {'no' if not bad else 'some'} files skipped" + (", none left" if ds is None else ""))
            if ds is None:
                return
            assert ds.file_paths == good
        else:
            ds = image_dataset_from_directory(root, **kwargs)
            if bad:
                with pytest.raises(ValueError, match=r"cannot decode image file ") as error:
                    list(ds)
                assert any(str(error.value).startswith(f"cannot decode image file {p}: ") for p in bad)
                event("raise: bad file named")
                return
            event("raise: all loaded")
        images = np.concatenate([x for x, _ in ds])
        assert images.shape == (len(good), 3, 3, 3) and images.dtype == np.float32


# Unreadable files. Root reads files whatever their permission bits, so the error path is
# tested by making ``open`` raise PermissionError; chmod 000 is tried too when not root.
def _images(root: Path) -> list[Path]:
    return [write_entry(root / cls, i, kind) for i, (cls, kind) in enumerate([("a", "png"), ("a", "jpg"),
                                                                             ("b", "gif")])]


def test_permission_error_is_named_and_skipped(tmp_path):
    paths = _images(tmp_path)
    locked = str(paths[1])
    real_open = Image.open

    def guarded_open(fp, *args, **kwargs):
        if os.fspath(fp) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(fp, *args, **kwargs)

    with mock.patch("PIL.Image.open", guarded_open):
        with pytest.raises(ValueError, match=rf"cannot decode image file {locked}: PermissionError: .*denied"):
            load_rgb(locked)
        with pytest.raises(ValueError, match=rf"cannot decode image file {locked}: PermissionError"):
            list(image_dataset_from_directory(tmp_path, image_size=(3, 3), shuffle=False))
        with pytest.warns(UserWarning, match=rf"skipping image file {locked}: cannot decode it \(PermissionError"):
            ds = image_dataset_from_directory(tmp_path, image_size=(3, 3), shuffle=False, on_error="skip")
        assert ds.file_paths == [str(paths[0]), str(paths[2])]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root, which reads chmod 000 files; the mocked test covers the error path")
def test_chmod_000_file_is_named(tmp_path):
    paths = _images(tmp_path)
    paths[1].chmod(0)
    try:
        with pytest.raises(ValueError, match=rf"cannot decode image file {paths[1]}: PermissionError"):
            load_rgb(paths[1])
    finally:
        paths[1].chmod(0o644)


# The Oxford-IIIT Pet layout: photos with or without trimaps, stray files, a directory with a
# photo's name, and split list files holding anything from valid stems to random bytes.
PET_KINDS = ("pair", "pair", "pair", "no_trimap", "bad_photo", "bad_trimap", "stray", "dir")


@given(st.lists(st.sampled_from(PET_KINDS), min_size=0, max_size=6),
       st.one_of(st.none(), st.binary(max_size=40), st.lists(st.sampled_from(["pet0", "pet1", "# note", "x y"]))),
       st.sampled_from(["trainval", "test", None]))
@example(["pair"], None, "trainval")  # found: the num_val_samples error did not name the folder
@example(["pair"], b"\x80", "trainval")  # found: a non-UTF-8 list file raised UnicodeDecodeError
def test_pet_layouts_load_or_are_named(kinds, list_file, split):
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        images, trimaps = root / "images", root / "annotations" / "trimaps"
        images.mkdir()
        trimaps.mkdir(parents=True)
        for i, kind in enumerate(kinds):
            photo, trimap = images / f"pet{i}.jpg", trimaps / f"pet{i}.png"
            if kind == "dir":
                photo.mkdir()
                continue
            if kind == "stray":
                (images / f"pet{i}.txt").write_text("notes")
                continue
            Image.new("RGB", (5, 4), (i, 0, 0)).save(photo)
            if kind == "bad_photo":
                photo.write_bytes(photo.read_bytes()[:20])
            if kind != "no_trimap":
                Image.new("L", (5, 4), 1 + i % 3).save(trimap)
            if kind == "bad_trimap":
                trimap.write_bytes(b"")
        if list_file is not None:
            content = list_file if isinstance(list_file, bytes) else "\n".join(list_file).encode()
            (root / "annotations" / f"{split or 'trainval'}.txt").write_bytes(content)
        try:
            x, y = load_oxford_pet(root, (3, 3), split, num_val_samples=1)
        except (ValueError, FileNotFoundError) as e:
            assert str(root) in str(e), str(e)
            event("named error")
            return
        event("loaded")
    assert x.shape[1:] == (3, 3, 3) and y.shape == x.shape[:3] and x.dtype == np.float32 and y.dtype == np.uint8
