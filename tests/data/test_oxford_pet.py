"""Oxford-IIIT Pet layout loader (DLwP ch. 11) on a synthetic tree and the shared horse set."""

import os
import random
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxvision.data import load_oxford_pet, oxford_pet_pairs

STEMS = [f"pet_{i}" for i in range(8)]


def _trimap(i: int, size: tuple[int, int]) -> np.ndarray:
    """Three horizontal bands of values (1, 2, 3) rotated by i, so every mask differs."""
    w, h = size
    rows = np.arange(h)[:, None] * 3 // h
    return np.broadcast_to(1 + (rows + i) % 3, (h, w)).astype(np.uint8)


@pytest.fixture
def pet_tree(tmp_path):
    images, trimaps = tmp_path / "images", tmp_path / "annotations" / "trimaps"
    images.mkdir()
    trimaps.mkdir(parents=True)
    for i, stem in enumerate(STEMS):
        size = (20 + 3 * i, 15 + i)  # (width, height)
        if i == 1:  # Oxford has PNG data in .jpg files; RGBA must come out as RGB
            Image.new("RGBA", size, (30, 60, 90, 10)).save(images / f"{stem}.jpg", "PNG")
        elif i == 2:
            Image.new("L", size, 77).save(images / f"{stem}.jpg", "PNG")
        else:
            Image.new("RGB", size, (i, 2 * i, 3 * i)).save(images / f"{stem}.jpg", "PNG")
        Image.fromarray(_trimap(i, size)).save(trimaps / f"{stem}.png")
    (images / "._pet_0.jpg").write_bytes(b"AppleDouble junk")  # dot-files are ignored
    (trimaps / "._pet_0.png").write_bytes(b"AppleDouble junk")
    (images / "pet_0.mat").write_bytes(b"not an image")
    return tmp_path


def _book_order() -> list[str]:
    stems = sorted(STEMS)
    random.Random(1337).shuffle(stems)
    return stems


def test_native_size_values_are_exact(pet_tree):
    pairs = oxford_pet_pairs(pet_tree, None)
    assert [image.stem for image, _ in pairs] == _book_order()
    images, masks = load_oxford_pet(pet_tree, (15, 20), None, num_val_samples=2)
    assert images.shape == (8, 15, 20, 3) and images.dtype == np.float32
    assert masks.shape == (8, 15, 20) and masks.dtype == np.uint8
    k = _book_order().index("pet_0")  # a photo of native size 20x15: no resize at all
    np.testing.assert_array_equal(masks[k], _trimap(0, (20, 15)) - 1)
    np.testing.assert_array_equal(images[k], 0)
    np.testing.assert_array_equal(images[_book_order().index("pet_1")], np.full((15, 20, 3), [30, 60, 90]))
    np.testing.assert_array_equal(images[_book_order().index("pet_2")], 77)


def test_resized_masks_are_nearest_and_images_bilinear(pet_tree):
    images, masks = load_oxford_pet(pet_tree, (11, 13), None)
    for k, stem in enumerate(_book_order()):
        with Image.open(pet_tree / "annotations" / "trimaps" / f"{stem}.png") as m:
            want = np.asarray(m.resize((13, 11), Image.Resampling.NEAREST)) - 1
        np.testing.assert_array_equal(masks[k], want)
    with Image.open(pet_tree / "images" / "pet_5.jpg") as img:
        photo = np.asarray(img, np.float32)
    k = _book_order().index("pet_5")
    ref = jax.image.resize(photo, (11, 13, 3), "bilinear", antialias=False)
    np.testing.assert_allclose(images[k], np.asarray(ref), atol=5e-3)


def test_split_without_list_files_follows_the_book(pet_tree):
    order = _book_order()
    trainval = [p[0].stem for p in oxford_pet_pairs(pet_tree, "trainval", num_val_samples=3)]
    test = [p[0].stem for p in oxford_pet_pairs(pet_tree, "test", num_val_samples=3)]
    assert trainval == order[:-3] and test == order[-3:]
    with pytest.raises(ValueError, match="num_val_samples=8 must be between 1 and 7"):
        oxford_pet_pairs(pet_tree, "test", num_val_samples=8)


def test_split_list_files_are_used(pet_tree):
    annotations = pet_tree / "annotations"
    header = "#Image CLASS-ID SPECIES BREED ID\n#\n"
    (annotations / "trainval.txt").write_text(header + "pet_3 1 1 1\npet_0 1 1 1\n\n")
    (annotations / "test.txt").write_text("pet_5 1 2 3  # a comment\npet_7 1 1 1\n")
    images, masks = load_oxford_pet(pet_tree, (8, 8), "trainval")
    assert images.shape == (2, 8, 8, 3) and masks.shape == (2, 8, 8)
    order = _book_order()
    want = [s for s in order if s in ("pet_0", "pet_3")]
    assert [p[0].stem for p in oxford_pet_pairs(pet_tree, "trainval")] == want
    assert sorted(p[0].stem for p in oxford_pet_pairs(pet_tree, "test")) == ["pet_5", "pet_7"]
    (annotations / "test.txt").write_text("pet_9 1 1 1\n")
    with pytest.raises(ValueError, match=r"test\.txt lists 1 stems with no image .*pet_9"):
        oxford_pet_pairs(pet_tree, "test")


def test_missing_mask_is_named(pet_tree):
    (pet_tree / "annotations" / "trimaps" / "pet_4.png").unlink()
    with pytest.raises(ValueError, match=r"pet_4\.jpg has no trimap: .*trimaps/pet_4\.png is missing"):
        load_oxford_pet(pet_tree)


def test_mask_of_the_wrong_size_is_named(pet_tree):
    Image.fromarray(_trimap(3, (10, 10))).save(pet_tree / "annotations" / "trimaps" / "pet_3.png")
    with pytest.raises(ValueError, match=r"trimap .*pet_3\.png is 10x10 but its image .*pet_3\.jpg is 29x18"):
        load_oxford_pet(pet_tree, split=None)


def test_mask_values_outside_trimap_are_named(pet_tree):
    bad = _trimap(6, (38, 21)).copy()
    bad[0, :2] = (0, 4)
    Image.fromarray(bad).save(pet_tree / "annotations" / "trimaps" / "pet_6.png")
    with pytest.raises(ValueError, match=r"trimap .*pet_6\.png has values \[0, 4\] outside \{1, 2, 3\}"):
        load_oxford_pet(pet_tree, split=None)


def test_undecodable_list_file_is_named(pet_tree):
    """Found by fuzzing: a list file that is not UTF-8 gave a bare UnicodeDecodeError."""
    list_file = pet_tree / "annotations" / "trainval.txt"
    list_file.write_bytes(b"pet_1\n\x80\n")
    with pytest.raises(ValueError, match=rf"cannot read split list {list_file}: UnicodeDecodeError: .*0x80"):
        oxford_pet_pairs(pet_tree, "trainval")


HORSE = Path(os.environ.get("JAXVISION_DATA", "/nonexistent")) / "weizmann_horse"


@pytest.mark.skipif(not HORSE.is_dir(), reason="JAXVISION_DATA is unset or has no weizmann_horse/ folder")
def test_shared_horse_set(tmp_path):
    trainval = oxford_pet_pairs(HORSE, "trainval")
    test = oxford_pet_pairs(HORSE, "test")
    assert (len(trainval), len(test)) == (278, 49)
    # The README's split rule is the book's shuffle with 49 held out: without the list files
    # (a tree of links to the same folders), the fallback gives the same split and order.
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").symlink_to(HORSE / "images")
    (tmp_path / "annotations" / "trimaps").symlink_to(HORSE / "annotations" / "trimaps")
    for split, pairs in (("trainval", trainval), ("test", test)):
        fallback = oxford_pet_pairs(tmp_path, split, num_val_samples=49)
        assert [p[0].stem for p in fallback] == [p[0].stem for p in pairs]
    images, masks = load_oxford_pet(HORSE, (64, 64), "test")
    assert images.shape == (49, 64, 64, 3) and masks.shape == (49, 64, 64)
    assert 0 <= images.min() and images.max() <= 255 and set(np.unique(masks).tolist()) == {0, 1, 2}
    # README: on average 22.7% horse, 71.4% background, 5.9% boundary; 49 images land near it.
    fractions = np.bincount(masks.ravel(), minlength=3) / masks.size
    np.testing.assert_allclose(fractions, [0.227, 0.714, 0.059], atol=0.05)
