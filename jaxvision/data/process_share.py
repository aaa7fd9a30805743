"""Each process's share of every global batch, when several processes (hosts) train together
with ``jax.distributed``.

A pipeline's ``batch_size`` is the global batch. Process ``p`` of ``P`` loads only the
contiguous ``p``-th part of each global batch (of the epoch's shuffled order), in batches of
``batch_size / P``; the training loop reassembles the global batch from the processes' parts
(``jax.make_array_from_process_local_data``), so training sees the same batches as one process.
"""

import grain
import jax
import numpy as np


def process_positions(n: int, batch_size: int, process_index: int, process_count: int) -> np.ndarray:
    """The positions (in an epoch's order of ``n`` examples) that process ``process_index`` loads.

    Examples:
        >>> process_positions(10, 4, process_index=1, process_count=2).tolist()  # batches [0-3] [4-7] [8-9]
        [2, 3, 6, 7, 9]
    """
    if batch_size % process_count:
        raise ValueError(f"batch_size {batch_size} does not split over {process_count} processes; "
                         f"use a multiple of {process_count}")
    parts = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        parts.append(np.arange(start + process_index * size // process_count,
                               start + (process_index + 1) * size // process_count))
    return np.concatenate(parts).astype(np.int64)


def this_process_share(ds: grain.MapDataset, batch_size: int) -> tuple[grain.MapDataset, int]:
    """``ds`` (one epoch, in order) reduced to this process's share, and the per-process batch
    size; unchanged with a single process."""
    count = jax.process_count()
    if count == 1:
        return ds, batch_size
    positions = process_positions(len(ds), batch_size, jax.process_index(), count)
    return grain.MapDataset.range(len(positions)).map(lambda k: ds[int(positions[k])]), batch_size // count
