"""In-memory arrays as a grain pipeline: shuffled batches with an optional random transform
(e.g. joint image/mask augmentation), one epoch per ``iter()``, reproducible per (seed, epoch)."""

import math
from collections.abc import Callable, Iterator

import grain
import numpy as np

from jaxvision.data.process_share import this_process_share
from jaxvision.data.seeding import epoch_seed


class ArrayDataset:
    """Batches ``(x[i], y[i])`` of aligned arrays, like ``ImageFolderDataset`` for data that
    is already decoded. ``batch_transform(batch, rng)`` runs on each batch with a generator
    seeded by (seed, epoch, batch), e.g. [jaxvision.layers.AugmentBatch][jaxvision.layers.AugmentBatch]. With several
    processes, each yields only its part of every global batch of ``batch_size``
    (``jaxvision.data.process_share``).

    Examples:
        >>> import numpy as np
        >>> data = ArrayDataset(np.arange(5.0), np.arange(5), batch_size=2, seed=0)
        >>> len(data), [len(x) for x, _ in data]
        (3, [2, 2, 1])
        >>> data.set_epoch(3); a = [y.tolist() for _, y in data]; data.set_epoch(3)
        >>> a == [y.tolist() for _, y in data]
        True
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool = True, seed: int = 0,
                 batch_transform: Callable | None = None):
        if len(x) != len(y):
            raise ValueError(f"ArrayDataset: x has {len(x)} examples but y has {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.batch_transform = batch_transform
        self._epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch, self._epoch = self._epoch, self._epoch + 1
        ds = grain.MapDataset.range(len(self.x))
        if self.shuffle:
            ds = ds.shuffle(seed=epoch_seed(self.seed, epoch, 0))
        ds, batch_size = this_process_share(ds, self.batch_size)
        ds = ds.batch(batch_size, batch_fn=lambda index: (self.x[np.array(index)], self.y[np.array(index)]))
        if self.batch_transform is not None:
            ds = ds.random_map(self.batch_transform, seed=epoch_seed(self.seed, epoch, 1))
        return iter(ds)
