"""``make_subset`` of DLwP listing 8.6: copy a slice of Kaggle Dogs vs. Cats into class folders."""

import os
import shutil
from pathlib import Path

CATEGORIES = ("cat", "dog")


def make_subset(
    original_dir: str | os.PathLike,
    new_base_dir: str | os.PathLike,
    subset_name: str,
    start_index: int,
    end_index: int,
) -> Path:
    """Copy ``cat.{i}.jpg`` and ``dog.{i}.jpg`` for ``i in range(start_index, end_index)`` from
    the Kaggle ``train/`` folder into ``new_base_dir/subset_name/{cat,dog}/``; returns that
    subset folder. Every source file is checked before anything is copied.

    Examples:
        >>> import tempfile
        >>> src, dst = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        >>> for name in ("cat.0.jpg", "cat.1.jpg", "dog.0.jpg", "dog.1.jpg"):
        ...     _ = (src / name).write_bytes(b"jpeg")
        >>> out = make_subset(src, dst, "train", 0, 2)
        >>> sorted(str(p.relative_to(dst)) for p in out.rglob("*.jpg"))
        ['train/cat/cat.0.jpg', 'train/cat/cat.1.jpg', 'train/dog/dog.0.jpg', 'train/dog/dog.1.jpg']

        Raises:
            FileNotFoundError: ``original_dir`` or some of the source files are missing (the
                message names them).
            FileExistsError: the target class folder already holds one of the files, as the
                book's ``os.makedirs`` would refuse a second run.
    """
    original_dir, subset_dir = Path(original_dir), Path(new_base_dir) / subset_name
    if not original_dir.is_dir():
        raise FileNotFoundError(f"{original_dir} is not a folder; expected the Kaggle train/ folder")
    if not 0 <= start_index < end_index:
        raise ValueError(f"need 0 <= start_index < end_index, got {start_index}, {end_index}")
    names = [f"{category}.{i}.jpg" for category in CATEGORIES for i in range(start_index, end_index)]
    targets = [subset_dir / name.split(".")[0] / name for name in names]
    missing = [name for name in names if not (original_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(names)} files missing in {original_dir}, e.g. {', '.join(missing[:5])}"
        )
    existing = [target for target in targets if target.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists; remove {subset_dir} to rebuild the subset")
    for category in CATEGORIES:
        (subset_dir / category).mkdir(parents=True, exist_ok=True)
    for name, target in zip(names, targets):
        shutil.copyfile(original_dir / name, target)
    return subset_dir
