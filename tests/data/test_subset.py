"""make_subset of DLwP listing 8.6 on a fake Kaggle train/ folder."""

import pytest

from jaxvision.data import image_dataset_from_directory, make_subset


@pytest.fixture
def kaggle_train(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    for category in ("cat", "dog"):
        for i in range(6):
            (train / f"{category}.{i}.jpg").write_bytes(f"{category}-{i}".encode())
    return train


def test_copies_the_requested_slice(kaggle_train, tmp_path):
    base = tmp_path / "small"
    assert make_subset(kaggle_train, base, "train", 0, 4) == base / "train"
    make_subset(kaggle_train, base, "validation", 4, 6)
    for subset, indices in (("train", range(0, 4)), ("validation", range(4, 6))):
        for category in ("cat", "dog"):
            folder = base / subset / category
            assert sorted(p.name for p in folder.iterdir()) == [f"{category}.{i}.jpg" for i in indices]
            for i in indices:
                assert (folder / f"{category}.{i}.jpg").read_bytes() == f"{category}-{i}".encode()
    # The result is the layout image_dataset_from_directory expects (indexing only, no decoding).
    ds = image_dataset_from_directory(base / "train", shuffle=False)
    assert ds.class_names == ["cat", "dog"] and ds.num_images == 8


def test_missing_files_are_listed_and_nothing_is_copied(kaggle_train, tmp_path):
    (kaggle_train / "dog.2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 12 files missing in .*train, e\.g\. dog\.2\.jpg"):
        make_subset(kaggle_train, tmp_path / "small", "train", 0, 6)
    assert not (tmp_path / "small").exists()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        make_subset(tmp_path / "nope", tmp_path / "small", "train", 0, 2)


def test_rerun_and_bad_range(kaggle_train, tmp_path):
    make_subset(kaggle_train, tmp_path / "small", "test", 0, 2)
    with pytest.raises(FileExistsError, match=r"test/cat/cat\.0\.jpg already exists"):
        make_subset(kaggle_train, tmp_path / "small", "test", 0, 2)
    with pytest.raises(ValueError, match="start_index < end_index"):
        make_subset(kaggle_train, tmp_path / "small", "x", 3, 3)
