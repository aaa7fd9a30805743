"""``image_dataset_from_directory``: Keras's folder-of-images loader, on grain.

It finds files the way Keras does (class sub-folders in alphanumeric order, walked
recursively, extensions jpg/jpeg/png/bmp/gif in any case), shuffles them once with
``np.random.RandomState(seed)`` and splits off the last ``int(validation_split * n)`` files
for validation, so a given seed puts the same files in the same subset as Keras. Images are
decoded with Pillow, converted to RGB and resized as Keras's JAX backend does (see
``image_io``). Batches are NumPy ``(images float32 (B, H, W, 3) in [0, 255], labels)``.

Unlike Keras, the per-epoch shuffle is a pure function of ``(seed, epoch)`` (``set_epoch``),
so a resumed run sees the same batches; an empty class folder is an error; and a bad image
file either raises an error naming it (``on_error="raise"``, also from worker processes) or
is dropped with a warning after a quick decode check of every file (``on_error="skip"``).
"""

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grain
import numpy as np

from jaxvision.data.image_io import INTERPOLATIONS, check_decodable, load_rgb, resize
from jaxvision.data.process_share import this_process_share
from jaxvision.data.seeding import epoch_seed

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
LABEL_MODES = ("int", "categorical", "binary", None)
_READ_THREADS = 4  # decoding threads per process; Pillow and NumPy release the GIL


def image_dataset_from_directory(
    directory: str | os.PathLike,
    *,
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    image_size: int | tuple[int, int] = (256, 256),
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    num_workers: int = 0,
    on_error: str = "raise",
    batch_transform: Callable | None = None,
) -> "ImageFolderDataset | tuple[ImageFolderDataset, ImageFolderDataset]":
    """Batches of ``(images, labels)`` from class sub-folders, like Keras's function.

    Args:
        labels: ``"inferred"`` (from sub-folder names), ``None``, or one int per file in
            alphanumeric path order.
        label_mode: ``"int"`` (int32 ``(B,)``), ``"binary"`` (float32 ``(B, 1)``, needs two
            classes), ``"categorical"`` (one-hot float32 ``(B, classes)``) or ``None``
            (batches are images only).
        class_names: sub-folders to use, in this order (default: all, sorted).
        validation_split, subset: fraction held out and ``"training"``, ``"validation"`` or
            ``"both"`` (returns both datasets; the validation one is not shuffled).
        num_workers: worker processes (``grain.MultiprocessingOptions``); 0 decodes in the
            calling process with a few threads.
        on_error: ``"raise"`` or ``"skip"``.
        batch_transform: ``f(batch, rng) -> batch`` run in the pipeline (workers too) on each
            batch, with a ``np.random.Generator`` that depends only on (seed, epoch, batch
            index), for augmentation that reproduces on resume.

    Examples:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        ...     (root / cls).mkdir()
        ...     for i in range(3):
        ...         Image.new("RGB", (10, 8), colour).save(root / cls / f"{i}.png")
        >>> ds = image_dataset_from_directory(root, image_size=(4, 4), batch_size=4, seed=0)
        >>> ds.class_names, ds.num_images, len(ds)
        (['cat', 'dog'], 6, 2)
        >>> images, labels = next(iter(ds))
        >>> images.shape, images.dtype, labels.dtype
        ((4, 4, 4, 3), dtype('float32'), dtype('int32'))
    """
    directory = os.fspath(directory)
    if isinstance(labels, (list, tuple, np.ndarray)):
        labels = [int(v) for v in labels]  # a plain list compares safely with "inferred" below
    _check_args(labels, label_mode, class_names, validation_split, subset, shuffle, seed, on_error)
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if len(image_size) != 2 or not all(isinstance(s, int) and s > 0 for s in image_size):
        raise ValueError(f"image_size must be (height, width) positive ints, got {image_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if seed is None:
        seed = int(np.random.randint(1_000_000))  # what Keras does; stored on the dataset
    paths, label_ids, class_names = _index_directory(directory, labels, class_names)
    if label_mode is None or labels is None:
        label_mode, label_ids = None, None
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'label_mode="binary" needs exactly 2 classes, found {class_names}')
    if label_mode is not None and (label_ids.min() < 0 or label_ids.max() >= len(class_names)):
        raise ValueError(f"explicit labels must be ints 0..{len(class_names) - 1} (one per distinct "
                         f"value), got values {class_names}")
    if shuffle:  # Keras shuffles the file list once, then splits it
        order = np.arange(len(paths))
        np.random.RandomState(seed).shuffle(order)
        paths = [paths[i] for i in order]
        label_ids = None if label_ids is None else label_ids[order]
    make = partial(
        _make_dataset, directory=directory, class_names=class_names, label_mode=label_mode,
        image_size=tuple(image_size), batch_size=batch_size, seed=seed, interpolation=interpolation,
        num_workers=num_workers, on_error=on_error, batch_transform=batch_transform,
    )
    if subset == "both":
        train = _split(paths, label_ids, validation_split, "training")
        val = _split(paths, label_ids, validation_split, "validation")
        train_ds = make(*train, shuffle=shuffle, subset="training")
        return train_ds, make(*val, shuffle=False, subset="validation")
    return make(*_split(paths, label_ids, validation_split, subset), shuffle=shuffle, subset=subset)


class ImageFolderDataset:
    """One epoch of batches per ``iter()``; ``len()`` is the number of batches per epoch.

    Each ``iter()`` uses the current epoch and then advances it; ``set_epoch(e)`` before
    iterating makes the order the one of epoch ``e`` for this seed, whatever came before.
    """

    def __init__(
        self, file_paths: list[str], label_ids: np.ndarray | None, *, class_names: list[str] | None,
        label_mode: str | None, image_size: tuple[int, int], batch_size: int, shuffle: bool, seed: int,
        interpolation: str, num_workers: int, batch_transform: Callable | None,
    ):
        self.file_paths = file_paths
        self.class_names = class_names
        self.label_mode = label_mode
        self.image_size = image_size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_workers = num_workers
        ids = [0] * len(file_paths) if label_ids is None else label_ids.tolist()
        self._records = list(zip(file_paths, ids))
        self._interpolation = interpolation
        self._batch_transform = batch_transform
        self._epoch = 0

    @property
    def num_images(self) -> int:
        return len(self.file_paths)

    def __len__(self) -> int:
        return math.ceil(self.num_images / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator:
        epoch, self._epoch = self._epoch, self._epoch + 1
        return iter(self.batches(epoch))

    def batches(self, epoch: int = 0) -> grain.IterDataset:
        """Epoch ``epoch``'s batches (this process's part of each) as grain's own ``IterDataset``,
        what ``iter(self)`` runs: chain grain's ``map``, ``filter``, ``prefetch`` on it."""
        return self._pipeline(epoch, shuffle=self.shuffle, transform=self._batch_transform)

    def examples(self) -> grain.MapDataset:
        """Every ``(image, label)`` pair (or image, with ``label_mode=None``), decoded when read,
        as grain's own ``MapDataset``: index it, iterate it, and chain grain's ``shuffle``,
        ``map``, ``batch``, slicing (``take``) and ``to_iter_dataset(...)`` (prefetching) as the
        book chains ``tf.data`` (listings 8.10–8.13). Batching stacks examples into exactly the
        batches ``iter(self)`` yields. Not split between processes.

        Examples:
            >>> import pathlib, tempfile, numpy as np
            >>> from PIL import Image
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> for label in ("cat", "dog"):
            ...     (root / label).mkdir()
            ...     Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / label / "0.png")
            >>> data = image_dataset_from_directory(root, image_size=(4, 4), label_mode="binary", shuffle=False)
            >>> image, label = data.examples()[1]
            >>> image.shape, label
            ((4, 4, 3), array([1.], dtype=float32))
            >>> [x.shape for x in next(iter(data.examples().shuffle(seed=0).batch(2)))]
            [(2, 4, 4, 3), (2, 1)]
        """
        return grain.MapDataset.source(self._records).map(self._example)

    def _example(self, record: tuple[str, int]):
        path, label = record
        image = resize(load_rgb(path), self.image_size, self._interpolation)
        if self.label_mode is None:
            return image
        if self.label_mode == "int":
            return image, np.int32(label)
        if self.label_mode == "binary":
            return image, np.array([label], np.float32)
        return image, np.eye(len(self.class_names), dtype=np.float32)[label]

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All images (in ``file_paths`` order, no ``batch_transform``) and labels at once."""
        batches = list(self._pipeline(0, shuffle=False, transform=None, every_process_all=True))
        if self.label_mode is None:
            return np.concatenate(batches), None
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    def _pipeline(self, epoch: int, *, shuffle: bool, transform: Callable | None,
                  every_process_all: bool = False) -> grain.IterDataset:
        ds = self.examples()  # decoded lazily: only the examples this process keeps are read
        if shuffle:
            ds = ds.shuffle(seed=epoch_seed(self.seed, epoch, 0))
        # With several processes, each loads its part of every global batch (unless all is asked for).
        ds, batch_size = (ds, self.batch_size) if every_process_all else this_process_share(ds, self.batch_size)
        ds = ds.batch(batch_size, batch_fn=_stack)
        if transform is not None:
            ds = ds.random_map(transform, seed=epoch_seed(self.seed, epoch, 1))
        options = grain.ReadOptions(num_threads=_READ_THREADS, prefetch_buffer_size=2 * _READ_THREADS)
        it = ds.to_iter_dataset(options)
        if self.num_workers > 0:
            _absl_flags_parsed()
            it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.num_workers),
                                worker_init_fn=_host_only_worker)
        return it


def _stack(examples: list) -> tuple | np.ndarray:
    """What grain's default batching computes, into ordinary arrays. grain's default puts batches
    made by worker processes into shared memory, whose cleanup at worker exit raised
    ``ReentrantCallError`` warnings from Python's resource tracker here (flaky, 1 run in 3)."""
    if isinstance(examples[0], tuple):
        return tuple(np.stack(column) for column in zip(*examples))
    return np.stack(examples)


def _host_only_worker(worker_index: int, worker_count: int) -> None:
    """Workers decode (and run ``batch_transform``, jax included) on the host CPU: an
    accelerator backend in each worker would take device memory from the training process."""
    os.environ["JAX_PLATFORMS"] = "cpu"
    if "jax" in sys.modules:  # imported but no backend yet: the config still applies
        sys.modules["jax"].config.update("jax_platforms", "cpu")


def _absl_flags_parsed() -> None:
    # grain's worker start reads an absl flag and fails unless flags were parsed (as
    # absl.app.run would do); mark the defaults as parsed when nobody has.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _check_args(labels, label_mode, class_names, validation_split, subset, shuffle, seed, on_error) -> None:
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f'labels must be "inferred", None or a list of ints, got {labels!r}')
    if class_names is not None and labels != "inferred":
        raise ValueError('class_names can only be given with labels="inferred"')
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}')
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {validation_split}")
    if bool(validation_split) != bool(subset):
        raise ValueError("validation_split and subset must be given together")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'subset must be "training", "validation" or "both", got {subset!r}')
    if validation_split and shuffle and seed is None:
        raise ValueError("validation_split with shuffle=True needs a seed, or the subsets would overlap")


def _index_directory(directory: str, labels, class_names) -> tuple[list[str], np.ndarray | None, list | None]:
    """File paths (Keras order: per class folder, walked and sorted) and label ids."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"image directory {directory} does not exist")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if not subdirs:
            raise ValueError(f"no class sub-folders in {directory}; expected {directory}/<class>/<images>")
        if class_names is not None:
            unknown = sorted(set(class_names) - set(subdirs))
            if unknown:
                raise ValueError(f"class_names {unknown} are not sub-folders of {directory}: {subdirs}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
    paths, ids = [], []
    root = os.path.realpath(directory)
    for index, subdir in enumerate(subdirs):
        folder = os.path.join(directory, subdir)
        real = os.path.realpath(folder)
        if subdir and os.path.commonpath([root, real]) == real:  # a link to the root or above it
            raise ValueError(f"class folder {folder} links back to {real}, which contains the dataset root "
                             f"{directory}; its images would be counted again under another label")
        if subdir and os.path.islink(folder):  # to a sibling (its images twice) or out of the root
            raise ValueError(f"class folder {folder} is a symbolic link to {real}; refused (a class folder must be "
                             f"a real folder inside {directory}, or its images are read twice or from elsewhere)")
        found = [os.path.join(root, f) for root, _, files in sorted(os.walk(folder), key=lambda w: w[0])
                 for f in sorted(files) if f.lower().endswith(ALLOWLIST_FORMATS)]
        if not found:
            raise ValueError(f"no images in {folder} (allowed extensions: {', '.join(ALLOWLIST_FORMATS)})")
        paths += found
        ids += [index] * len(found)
    if labels == "inferred":
        return paths, np.array(ids, dtype=np.int32), subdirs
    if labels is None:
        return paths, None, None
    if len(labels) != len(paths):
        raise ValueError(f"got {len(labels)} labels but found {len(paths)} images in {directory}")
    return paths, np.asarray(labels, dtype=np.int32), [str(v) for v in sorted(set(labels))]


def _split(paths: list[str], label_ids, validation_split, subset) -> tuple[list[str], np.ndarray | None]:
    """Keras's rule: the last ``int(validation_split * n)`` files are the validation set."""
    if not validation_split:
        return paths, label_ids
    num_val = int(validation_split * len(paths))
    cut = len(paths) - num_val
    part = slice(cut, None) if subset == "validation" else slice(None, cut)
    return paths[part], None if label_ids is None else label_ids[part]


def _make_dataset(paths, label_ids, *, subset, directory, on_error, **kwargs) -> ImageFolderDataset:
    if on_error == "skip":
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            problems = list(pool.map(check_decodable, paths))
        for path, problem in zip(paths, problems):
            if problem:
                warnings.warn(f"skipping image file {path}: cannot decode it ({problem})", UserWarning,
                              stacklevel=3)
        keep = [i for i, problem in enumerate(problems) if problem is None]
        paths = [paths[i] for i in keep]
        label_ids = None if label_ids is None else label_ids[keep]
    if not paths:
        what = f"{subset} images" if subset else "usable images"
        raise ValueError(f"no {what} in {directory}")
    return ImageFolderDataset(paths, label_ids, **kwargs)
