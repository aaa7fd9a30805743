"""Listings 8.9–8.14 on grain: the book's tf.data habits (iterate element by element, batch,
map, shuffle, take, prefetch) with grain's own MapDataset/IterDataset, and jaxvision's folder
loader exposing one."""

import grain
import numpy as np
import pytest
from PIL import Image

from jaxvision.data import image_dataset_from_directory


@pytest.fixture(scope="module")
def dataset():
    """Listing 8.10: a dataset of 1,000 random 16-vectors (tf.data.Dataset.from_tensor_slices)."""
    random_numbers = np.random.default_rng(0).normal(size=(1000, 16))
    return random_numbers, grain.MapDataset.source(random_numbers)


def test_listings_8_10_and_8_11_a_dataset_from_an_array_iterated(dataset):
    random_numbers, ds = dataset
    shapes = []
    for i, element in enumerate(ds):
        shapes.append(element.shape)
        if i >= 2:
            break
    assert shapes == [(16,)] * 3 and len(ds) == 1000
    np.testing.assert_array_equal(ds[2], random_numbers[2])


def test_listing_8_12_batching(dataset):
    random_numbers, ds = dataset
    batched = ds.batch(32)
    assert [batch.shape for _, batch in zip(range(3), batched)] == [(32, 16)] * 3
    assert len(batched) == 32 and batched[31].shape == (8, 16)  # 1000 = 31 × 32 + 8
    np.testing.assert_array_equal(batched[1], random_numbers[32:64])


def test_listing_8_13_map_shuffle_take_prefetch(dataset):
    random_numbers, ds = dataset
    reshaped = ds.map(lambda x: np.reshape(x, (4, 4)))
    assert [x.shape for _, x in zip(range(3), reshaped)] == [(4, 4)] * 3
    shuffled = ds.shuffle(seed=1)
    taken = shuffled[:5]  # .take(5)
    assert len(taken) == 5 and not np.array_equal(np.stack(list(taken)), random_numbers[:5])
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, random_numbers))  # a permutation
    prefetched = reshaped.batch(100).to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
    assert isinstance(prefetched, grain.IterDataset)
    np.testing.assert_array_equal(np.concatenate(list(prefetched)).reshape(1000, 16), random_numbers)


def test_listing_8_9_image_dataset_from_directory_yields_grain_datasets(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(20):
            Image.fromarray(np.full((30, 40, 3), 10 * i, np.uint8)).save(tmp_path / label / f"{label}.{i}.jpg")
    train_dataset = image_dataset_from_directory(tmp_path, image_size=(180, 180), batch_size=32, seed=0)
    for data_batch, labels_batch in train_dataset:  # listing 8.14, "displaying the shapes yielded by the Dataset"
        assert data_batch.shape == (32, 180, 180, 3) and labels_batch.shape == (32,)
        assert data_batch.dtype == np.float32 and labels_batch.dtype == np.int32
        break
    assert isinstance(train_dataset.examples(), grain.MapDataset) and len(train_dataset.examples()) == 40
    batches = train_dataset.batches(epoch=3)  # what iter() runs in epoch 3, as grain's IterDataset
    assert isinstance(batches, grain.IterDataset)
    train_dataset.set_epoch(3)
    for ours, grains in zip(train_dataset, batches):
        np.testing.assert_array_equal(ours[1], grains[1])
    unshuffled = image_dataset_from_directory(tmp_path, image_size=(180, 180), batch_size=32, shuffle=False)
    image, label = unshuffled.examples()[25]  # sorted paths: a dog
    assert image.shape == (180, 180, 3) and label == 1
    # The loader's batches are grain's batching of these examples.
    for ours, grains in zip(unshuffled, unshuffled.examples().batch(32)):
        for a, b in zip(ours, grains):
            np.testing.assert_array_equal(a, b)
