"""image_dataset_from_directory: Keras's file order and split, decoding, epochs, errors, workers."""

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxvision.data import image_dataset_from_directory
from jaxvision.data.image_folder import ALLOWLIST_FORMATS

H, W = 6, 8  # native size of every test image, so image_size=(H, W) means no resize


def _solid(path, mode, value, fmt=None, **save):
    Image.new(mode, (W, H), value).save(path, fmt, **save)


@pytest.fixture
def mixed_tree(tmp_path):
    """Class 'a': one file per format/mode with a known colour; class 'b': 12 PNGs whose red
    channel is their id (12..23), one in a nested folder (Keras walks recursively)."""
    root = tmp_path / "tree"
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    (b / "nested").mkdir(parents=True)
    _solid(a / "rgb.png", "RGB", (10, 20, 30))
    _solid(a / "grey.jpg", "L", 128, quality=100)
    _solid(a / "rgba.PNG", "RGBA", (40, 50, 60, 7))
    _solid(a / "cmyk.jpeg", "CMYK", (0, 255, 255, 0), quality=100)
    pal = Image.new("P", (W, H), 1)
    pal.putpalette([0, 0, 0, 70, 80, 90] + [0] * 762)
    pal.save(a / "pal.gif")
    _solid(a / "wide.png", "I;16", 257 * 200)
    _solid(a / "pic.bmp", "RGB", (1, 2, 3))
    (a / "notes.txt").write_text("not an image")
    (a / "x.tiff").write_bytes(b"ignored extension")
    for i in range(12, 24):
        _solid((b / "nested" if i == 23 else b) / f"{i:02d}.png", "RGB", (i, 0, 0))
    (root / ".hidden").mkdir()  # dot-folders are not classes
    return root


EXPECTED_A = {  # file name -> RGB after decoding (JPEGs within 3 levels)
    "rgb.png": (10, 20, 30), "grey.jpg": (128, 128, 128), "rgba.PNG": (40, 50, 60), "cmyk.jpeg": (255, 0, 0),
    "pal.gif": (70, 80, 90), "wide.png": (200, 200, 200), "pic.bmp": (1, 2, 3),
}


def test_index_matches_keras_order_and_split(keras, mixed_tree):
    from keras.src.utils import dataset_utils

    ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), shuffle=False)
    ref_paths, ref_labels, ref_names = dataset_utils.index_directory(
        str(mixed_tree), "inferred", formats=ALLOWLIST_FORMATS, shuffle=False, verbose=False)
    assert ds.class_names == ref_names == ["a", "b"]
    assert ds.file_paths == ref_paths and ds.num_images == 19 and len(ds) == 1
    assert not any(p.endswith((".txt", ".tiff")) for p in ds.file_paths)
    for subset in ("training", "validation"):
        ours = image_dataset_from_directory(mixed_tree, image_size=(H, W), seed=123, validation_split=0.3,
                                            subset=subset)
        paths, labels, _ = dataset_utils.index_directory(
            str(mixed_tree), "inferred", formats=ALLOWLIST_FORMATS, shuffle=True, seed=123, verbose=False)
        paths, labels = dataset_utils.get_training_or_validation_split(paths, labels, 0.3, subset)
        assert ours.file_paths == paths
        np.testing.assert_array_equal(ours.as_arrays()[1], labels)


def test_decoded_pixels_and_labels_are_exact(mixed_tree):
    ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), shuffle=False, batch_size=5)
    images, labels = ds.as_arrays()
    assert images.shape == (19, H, W, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and labels.tolist() == [0] * 7 + [1] * 12
    for path, image in zip(ds.file_paths, images):
        name = path.rsplit("/", 1)[-1]
        if name in EXPECTED_A:
            atol = 3 if name.endswith(("jpg", "jpeg")) else 0
            np.testing.assert_allclose(image, np.broadcast_to(np.float32(EXPECTED_A[name]), image.shape),
                                       atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(image[..., 0], int(name[:2]))


def test_resize_matches_keras_grain_loader(keras, mixed_tree):
    ds = image_dataset_from_directory(mixed_tree / "b", labels=None, image_size=(5, 13), shuffle=False)
    ref = keras.utils.image_dataset_from_directory(mixed_tree / "b", labels=None, image_size=(5, 13),
                                                   shuffle=False, format="grain", verbose=False)
    np.testing.assert_allclose(ds.as_arrays()[0], np.concatenate(list(ref)), rtol=0, atol=5e-3)


def test_label_modes(mixed_tree):
    def first(mode, **kw):
        ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), label_mode=mode, shuffle=False,
                                          batch_size=19, **kw)
        return next(iter(ds))

    ids = np.array([0] * 7 + [1] * 12)
    _, y = first("int")
    assert y.dtype == np.int32 and y.shape == (19,)
    _, y = first("binary")
    assert y.dtype == np.float32 and y.shape == (19, 1)
    np.testing.assert_array_equal(y[:, 0], ids)
    _, y = first("categorical")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.eye(2)[ids])
    x = first(None)
    assert isinstance(x, np.ndarray) and x.shape == (19, H, W, 3)
    _, y = first("int", class_names=["b", "a"])  # explicit order renumbers the classes
    np.testing.assert_array_equal(y, [0] * 12 + [1] * 7)
    explicit = image_dataset_from_directory(mixed_tree, labels=[1] * 7 + [0] * 12, label_mode="categorical",
                                            image_size=H, shuffle=False)
    assert explicit.class_names == ["0", "1"] and explicit.image_size == (H, H)
    np.testing.assert_array_equal(explicit.as_arrays()[1][[0, -1]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"explicit labels must be ints 0\.\.1"):
        image_dataset_from_directory(mixed_tree, labels=[3] * 7 + [1] * 12, label_mode="categorical")
    shutil.copytree(mixed_tree / "b", mixed_tree / "c")
    with pytest.raises(ValueError, match="exactly 2 classes"):
        first("binary")


def test_validation_split_partitions(mixed_tree):
    train, val = image_dataset_from_directory(mixed_tree, image_size=(H, W), seed=5, validation_split=0.25,
                                              subset="both", batch_size=4)
    assert val.num_images == int(0.25 * 19) == 4 and train.num_images == 15
    assert set(train.file_paths).isdisjoint(val.file_paths)
    assert sorted(train.file_paths + val.file_paths) == sorted(
        image_dataset_from_directory(mixed_tree, shuffle=False).file_paths)
    assert len(train) == 4 and [len(x) for x, _ in train] == [4, 4, 4, 3]
    # The validation set is not shuffled: batches follow file_paths.
    red = np.concatenate([x[:, 0, 0, 0] for x, _ in val])
    np.testing.assert_array_equal(red, val.as_arrays()[0][:, 0, 0, 0])


def _order(ds):
    return np.concatenate([x[:, 0, 0, 0] for x, _ in ds]).tolist()


def test_epoch_order_is_a_function_of_seed_and_epoch(mixed_tree):
    kwargs = dict(image_size=(H, W), seed=11, batch_size=5)
    one = image_dataset_from_directory(mixed_tree, **kwargs)
    epoch0 = _order(one)  # iter() uses epoch 0, then advances
    epoch1 = _order(one)
    one.set_epoch(7)
    epoch7 = _order(one)
    two = image_dataset_from_directory(mixed_tree, **kwargs)
    two.set_epoch(7)
    assert _order(two) == epoch7
    two.set_epoch(0)
    assert _order(two) == epoch0
    every_image = sorted(one.as_arrays()[0][:, 0, 0, 0].tolist())
    assert len(set(every_image)) == 19 and sorted(epoch0) == sorted(epoch1) == every_image
    assert epoch0 != epoch1 and epoch0 != epoch7 and epoch1 != epoch7
    other_seed = image_dataset_from_directory(mixed_tree, image_size=(H, W), seed=12, batch_size=5)
    assert _order(other_seed) != epoch0


def test_batch_transform_gets_a_reproducible_rng(mixed_tree):
    def jitter(batch, rng):
        images, labels = batch
        return images + rng.uniform(0, 1, (len(images), 1, 1, 1)).astype(np.float32), labels

    def run(epoch):
        ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), seed=3, batch_size=4,
                                          batch_transform=jitter)
        ds.set_epoch(epoch)
        return np.concatenate([x[:, 0, 0, 0] for x, _ in ds])

    a, b, c = run(2), run(2), run(3)
    assert a.shape == (19,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.sort(a), np.sort(c))  # fresh noise per epoch
    assert np.all((a - np.floor(a) > 0) & (a - np.floor(a) < 1))  # noise was added to integer pixels


def _with_bad_files(root):
    png = (root / "b" / "12.png").read_bytes()
    (root / "b" / "cut.png").write_bytes(png[: len(png) // 2])
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2)


def test_bad_files_raise_with_name_or_are_skipped(mixed_tree):
    _with_bad_files(mixed_tree)
    ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), shuffle=False, batch_size=32)
    with pytest.raises(ValueError, match=r"cannot decode image file .*corrupt\.jpg"):
        list(ds)
    with pytest.warns(UserWarning) as record:
        ds = image_dataset_from_directory(mixed_tree, image_size=(H, W), seed=1, on_error="skip")
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2 and "corrupt.jpg" in messages[0] and "cut.png" in messages[1]
    assert ds.num_images == 19 and not any("corrupt" in p or "cut" in p for p in ds.file_paths)
    assert sum(len(x) for x, _ in ds) == 19


# grain's workers pass batches through shared memory; CPython 3.12.1's resource tracker can
# raise ReentrantCallError from a segment's finalizer while it is itself busy (a garbage
# collection inside its own send), reported as unraisable at cleanup. The batches are checked
# below; the tracker's own cleanup noise is not ours (failed 1 run in 2 under pytest-xdist).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_num_workers_two_matches_in_process_and_propagates_errors(mixed_tree):
    kwargs = dict(image_size=(4, 5), seed=9, batch_size=6)
    serial = image_dataset_from_directory(mixed_tree, **kwargs)
    parallel = image_dataset_from_directory(mixed_tree, num_workers=2, **kwargs)
    for ds in (serial, parallel):
        ds.set_epoch(4)
    got, want = list(parallel), list(serial)
    assert len(got) == len(want) == math.ceil(19 / 6)
    for (x, y), (x_ref, y_ref) in zip(got, want):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
    _with_bad_files(mixed_tree)
    broken = image_dataset_from_directory(mixed_tree, num_workers=2, **kwargs)
    with pytest.raises(ValueError, match=r"cannot decode image file .*(corrupt\.jpg|cut\.png)"):
        list(broken)


def test_folder_errors(tmp_path, mixed_tree):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_dataset_from_directory(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no class sub-folders in .*empty"):
        image_dataset_from_directory(tmp_path / "empty")
    (mixed_tree / "d").mkdir()
    (mixed_tree / "d" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"no images in .*tree/d"):
        image_dataset_from_directory(mixed_tree)
    with pytest.raises(ValueError, match="needs a seed"):
        image_dataset_from_directory(mixed_tree, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="given together"):
        image_dataset_from_directory(mixed_tree, validation_split=0.2, seed=1)
    with pytest.raises(ValueError, match=r"class_names \['zebra'\]"):
        image_dataset_from_directory(mixed_tree, class_names=["a", "zebra"])


DOGS = Path(os.environ.get("JAXVISION_DATA", "/nonexistent")) / "dogs_vs_cats_small"


@pytest.mark.skipif(not DOGS.is_dir(), reason="JAXVISION_DATA is unset or has no dogs_vs_cats_small/ folder")
def test_shared_dogs_vs_cats(keras):
    from keras.src.utils import dataset_utils

    train, val = image_dataset_from_directory(DOGS / "train", image_size=(180, 180), label_mode="binary",
                                              seed=1337, validation_split=0.2, subset="both", batch_size=16)
    assert train.class_names == ["cat", "dog"] and (train.num_images, val.num_images) == (1600, 400)
    paths, _, _ = dataset_utils.index_directory(str(DOGS / "train"), "inferred", formats=ALLOWLIST_FORMATS,
                                                shuffle=True, seed=1337, verbose=False)
    assert train.file_paths + val.file_paths == paths  # Keras puts the same files in each subset
    x, y = next(iter(val))
    assert x.shape == (16, 180, 180, 3) and y.shape == (16, 1) and 0 <= x.min() < x.max() <= 255
    np.testing.assert_array_equal(y[:, 0], ["/dog/" in p for p in val.file_paths[:16]])


# The resource tracker's cleanup noise again (see above; here 25 semaphore finalizers of grain's
# worker queues, collected during the tracker's own send: 1 failure in the full suite, 2026-12-07).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_workers_never_start_an_accelerator_backend(mixed_tree, monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)  # spawned workers inherit the environment

    def report_platforms(batch, rng):  # runs in the worker: labels become "jax is CPU-only here"
        import jax

        return batch[0], np.full(len(batch[1]), jax.config.jax_platforms == "cpu", np.int32)

    ds = image_dataset_from_directory(mixed_tree, image_size=(4, 5), seed=0, batch_size=19, num_workers=1,
                                      batch_transform=report_platforms)
    (_, cpu_only), = list(ds)
    assert cpu_only.tolist() == [1] * 19
