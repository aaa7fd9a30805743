"""Oxford-IIIT Pet segmentation data as in DLwP ch. 11: photos and trimaps as NumPy arrays.

Layout: ``images/<stem>.jpg`` and ``annotations/trimaps/<stem>.png`` (dot-files such as
macOS ``._x.png`` are ignored, as in the book), optionally ``annotations/trainval.txt`` and
``test.txt`` (lines ``<stem> ...``, ``#`` comments). The shared ``weizmann_horse`` copy
follows it. Photos are resized bilinearly (as ``image_io.resize``; the book's ``load_img``
uses nearest), trimaps with nearest neighbour, and trimap values 1, 2, 3 become classes
0, 1, 2. ``oxford_pet_pairs`` + ``load_pair`` also fit a grain pipeline
(``grain.MapDataset.source(pairs).map(...)``) for sets too big for memory.
"""

import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from jaxvision.data.download import data_root
from jaxvision.data.image_io import load_rgb, open_image, resize

SPLITS = ("trainval", "test", None)


def oxford_pet_pairs(
    data_dir: str | os.PathLike,
    split: str | None = "trainval",
    *,
    num_val_samples: int = 1000,
    seed: int = 1337,
) -> list[tuple[Path, Path]]:
    """``(image_path, trimap_path)`` pairs of a split, in the book's order.

    The order is the book's: paths sorted, then ``random.Random(seed).shuffle``d. ``split``
    keeps the stems listed in ``annotations/<split>.txt`` when that file exists; otherwise
    ``"test"`` is the last ``num_val_samples`` pairs and ``"trainval"`` the rest, as the
    book holds out its validation images. ``None`` keeps everything.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(data_dir)
    images_dir, masks_dir = root / "images", root / "annotations" / "trimaps"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found; expected the Oxford-IIIT Pet layout under {root}")
    images = sorted(p for p in images_dir.iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg") and not p.name.startswith("."))
    if not images:
        raise ValueError(f"no .jpg images in {images_dir}")
    pairs = []
    for image in images:
        mask = masks_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise ValueError(f"image {image} has no trimap: {mask} is missing")
        pairs.append((image, mask))
    random.Random(seed).shuffle(pairs)
    if split is None:
        return pairs
    list_file = root / "annotations" / f"{split}.txt"
    if list_file.is_file():
        wanted = _read_stems(list_file)
        known = {image.stem for image, _ in pairs}
        absent = sorted(wanted - known)
        if absent:
            raise ValueError(
                f"{list_file} lists {len(absent)} stems with no image in {images_dir}, e.g. {absent[:3]}"
            )
        return [pair for pair in pairs if pair[0].stem in wanted]
    if not 0 < num_val_samples < len(pairs):
        raise ValueError(
            f"num_val_samples={num_val_samples} must be between 1 and {len(pairs) - 1} (the pair count - 1) "
            f"for the {len(pairs)} pairs in {root}"
        )
    return pairs[-num_val_samples:] if split == "test" else pairs[:-num_val_samples]


def load_pair(image_path: str | os.PathLike, mask_path: str | os.PathLike,
              image_size: tuple[int, int] = (200, 200)) -> tuple[np.ndarray, np.ndarray]:
    """One photo as float32 ``(H, W, 3)`` in [0, 255] and its trimap as uint8 classes 0-2.

    Raises:
        ValueError: the trimap is unreadable, not the photo's size, or has values outside
            {1, 2, 3}; the message names the file.
    """
    image = load_rgb(image_path)
    try:
        with open_image(mask_path) as m:
            m.load()
            # Single-channel trimaps hold the class values themselves (palette indices for
            # "P"); anything else is reduced to grey, as the book's load_img(grayscale) does.
            mask = np.asarray(m if m.mode in ("L", "P", "I", "I;16") else m.convert("L"))
    except Exception as e:
        raise ValueError(f"cannot decode trimap {mask_path}: {type(e).__name__}: {e}") from e
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"trimap {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} "
            f"is {image.shape[1]}x{image.shape[0]} (width x height)"
        )
    bad = np.setdiff1d(np.unique(mask), (1, 2, 3))
    if bad.size:
        raise ValueError(f"trimap {mask_path} has values {bad.tolist()[:5]} outside {{1, 2, 3}}")
    return resize(image, image_size, "bilinear"), (resize(mask, image_size, "nearest") - 1).astype(np.uint8)


DEFAULT_FOLDER = "weizmann_horse"  # the shared stand-in for the Oxford pets (same layout)


def load_oxford_pet(
    data_dir: str | os.PathLike | None = None,
    image_size: tuple[int, int] = (200, 200),
    split: str | None = "trainval",
    *,
    num_val_samples: int = 1000,
    seed: int = 1337,
    num_threads: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 (N, H, W, 3) in [0, 255], masks uint8 (N, H, W))`` of a split.

    ``data_dir`` defaults to ``$JAXVISION_DATA/weizmann_horse`` ([data_root][jaxvision.data.download.data_root]). See
    ``oxford_pet_pairs`` for ``split``, ``num_val_samples`` and the order; pairs are decoded
    with ``num_threads`` threads.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "annotations" / "trimaps").mkdir(parents=True)
        >>> for i in range(5):
        ...     Image.new("RGB", (30, 20), (i, 0, 0)).save(root / "images" / f"pet{i}.jpg")
        ...     Image.new("L", (30, 20), 1 + i % 3).save(root / "annotations" / "trimaps" / f"pet{i}.png")
        >>> x, y = load_oxford_pet(root, (8, 8), "trainval", num_val_samples=2)
        >>> x.shape, x.dtype, y.shape, y.dtype
        ((3, 8, 8, 3), dtype('float32'), (3, 8, 8), dtype('uint8'))
        >>> y[:, 0, 0].tolist()  # pets 1, 0, 3 in the book's shuffle; trimap 1 + i % 3 -> i % 3
        [1, 0, 0]
    """
    if data_dir is None:
        data_dir = data_root() / DEFAULT_FOLDER
    pairs = oxford_pet_pairs(data_dir, split, num_val_samples=num_val_samples, seed=seed)
    images = np.empty((len(pairs), *image_size, 3), np.float32)
    masks = np.empty((len(pairs), *image_size), np.uint8)

    def fill(i: int) -> None:
        images[i], masks[i] = load_pair(*pairs[i], image_size)

    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        list(pool.map(fill, range(len(pairs))))  # list() re-raises the first error
    return images, masks


def _read_stems(list_file: Path) -> set[str]:
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read split list {list_file}: {type(e).__name__}: {e}") from e
    lines = (line.split("#", 1)[0].split() for line in text.splitlines())
    return {fields[0] for fields in lines if fields}

