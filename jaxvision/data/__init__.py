"""Datasets of DLwP ch. 8-11 as NumPy arrays or grain pipelines, found under ``data_root()``."""

from jaxvision.data.arrays import ArrayDataset
from jaxvision.data.download import data_root, fetch
from jaxvision.data.image_folder import ImageFolderDataset, image_dataset_from_directory
from jaxvision.data.mnist import load_mnist, load_mnist_or_sample, load_mnist_sample
from jaxvision.data.oxford_pet import load_oxford_pet, load_pair, oxford_pet_pairs
from jaxvision.data.subset import make_subset

__all__ = [
    "ArrayDataset",
    "ImageFolderDataset",
    "data_root",
    "fetch",
    "image_dataset_from_directory",
    "load_mnist",
    "load_mnist_or_sample",
    "load_mnist_sample",
    "load_oxford_pet",
    "load_pair",
    "make_subset",
    "oxford_pet_pairs",
]
