"""Augmentation in the data pipeline, where the book puts it for its mini-Xception
(``train_dataset.map(data_augmentation).prefetch(...)``): each training batch is augmented
before it reaches the model, mapped over a grain dataset and prefetched, with the keys that
``fit`` would give the same augmentation stage inside the model at the same step."""

import math
from collections.abc import Iterator

import grain
import jax
import numpy as np
from flax import nnx

from jaxvision.train.sources import epoch_order
from jaxvision.train.steps import reseed_streams, stream_tags


class PipelineAugmentation:
    """Training batches ``(stage(x[batch]), y[batch])`` for ``fit``: ``x, y`` in ``fit``'s
    order for ``(seed, epoch)``, each batch put through the augmentation ``stage`` (e.g.
    ``jaxvision.models.augmentation.data_augmentation``) in training mode,
    its RNG streams reseeded as ``fit`` reseeds a model's at that step. So for the same seed,
    ``fit(model_without_stage, PipelineAugmentation(x, y, stage, ...))`` trains on the batches
    ``fit(model_with_stage_first, (x, y))`` augments inside its step. Batches are produced by
    a grain pipeline (``map``, then ``prefetch`` batches ahead on a thread), on the host. One
    process (with several, give each its share of every batch yourself).

    Args:
      x, y: aligned arrays, the whole training split.
      stage: the augmentation layers, as a module; copied, the original is left as it is.
      batch_size: examples per batch; the last batch of an epoch may be smaller.
      seed: ``fit``'s seed (shuffle order and augmentation keys).
      shuffle: shuffle each epoch, as ``fit(shuffle=True)`` does.
      prefetch: batches prepared ahead of the one the model trains on.

    Examples:
        >>> import numpy as np
        >>> from flax import nnx
        >>> from jaxvision.layers import RandomFlip
        >>> batches = PipelineAugmentation(np.ones((5, 4, 4, 3), np.float32), np.arange(5),
        ...                                RandomFlip(rngs=nnx.Rngs(augment=0)), batch_size=2)
        >>> [x.shape[0] for x, _ in batches], len(batches)
        ([2, 2, 1], 3)
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, stage: nnx.Module, *, batch_size: int, seed: int = 0,
                 shuffle: bool = True, prefetch: int = 2):
        if len(x) != len(y):
            raise ValueError(f"PipelineAugmentation: x has {len(x)} examples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"PipelineAugmentation: batch_size must be at least 1, got {batch_size}")
        self.x, self.y, self.batch_size, self.seed, self.shuffle, self.prefetch = x, y, batch_size, seed, shuffle, prefetch
        stage = nnx.clone(stage)
        stage.train()  # augmentation layers act in training mode only, as in Keras
        graphdef, state = nnx.split(stage)
        tags, base = stream_tags(stage), jax.random.key(seed)

        def augment(state: nnx.State, images: jax.Array, step: jax.Array) -> jax.Array:
            view = nnx.merge(graphdef, state, copy=True)
            reseed_streams(view, tags, jax.random.fold_in(base, step))
            return view(images)

        self._augment, self._state, self._epoch = jax.jit(augment), state, 0

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch, self._epoch = self._epoch, self._epoch + 1
        order = epoch_order(len(self.x), self.seed, epoch) if self.shuffle else np.arange(len(self.x))
        first_step = epoch * len(self)  # fit's step counter: one per batch since the first epoch

        def batch(i: int) -> tuple[np.ndarray, np.ndarray]:
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            images = self._augment(self._state, self.x[index], np.int32(first_step + i))
            return np.asarray(images), self.y[index]

        batches = grain.MapDataset.range(len(self)).map(batch)
        return iter(batches.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=self.prefetch)))
