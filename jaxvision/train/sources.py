"""Where batches come from: in-memory ``(x, y)`` arrays, or an iterable of ``(x, y)`` batches.

Arrays that fit (``DEVICE_LIMIT_BYTES``) are uploaded once and every batch is gathered on the
device inside the jitted step, so an accelerator is never waiting for the host. Larger
arrays are sliced on the host. The shuffled order of an epoch is a pure function of
``(seed, epoch)``, which is what makes a resumed run repeat the same batches.

Each source yields, per batch, its size and a ``run(*leading_args)`` that calls the
matching compiled step with the batch appended.
"""

import functools
import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from jaxvision.train.steps import Steps, on_device

DEVICE_LIMIT_BYTES = 1 << 30

Call = tuple[int, Callable]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of ``epoch``: the same for the same (seed, epoch).

    >>> epoch_order(5, seed=0, epoch=1).tolist() == epoch_order(5, seed=0, epoch=1).tolist()
    True
    """
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


class ArraySource:
    """Batches of ``batch_size`` (the last one may be smaller) from two aligned arrays."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, *, what: str):
        if len(x) != len(y):
            raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{what}: no examples")
        self.n, self.batch_size = len(x), batch_size
        self.resident = x.nbytes + y.nbytes < DEVICE_LIMIT_BYTES
        self.x, self.y = (on_device((x, y)) if self.resident else (np.asarray(x), np.asarray(y)))

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _spans(self) -> Iterator[tuple[int, int]]:
        for start in range(0, self.n, self.batch_size):
            yield start, min(self.batch_size, self.n - start)

    def train_calls(self, steps: Steps, *, seed: int, epoch: int, shuffle: bool) -> Iterator[Call]:
        order = epoch_order(self.n, seed, epoch) if shuffle else np.arange(self.n, dtype=np.int32)
        if self.resident:
            order = on_device(order)
            for start, size in self._spans():
                yield size, functools.partial(_gather_train, steps, self.x, self.y, order, start, size)
        else:
            for start, size in self._spans():
                index = order[start:start + size]
                yield size, functools.partial(_host_train, steps, self.x[index], self.y[index])

    def eval_calls(self, steps: Steps) -> Iterator[Call]:
        for start, size in self._spans():
            if self.resident:
                yield size, functools.partial(_gather_eval, steps, self.x, self.y, start, size)
            else:
                yield size, functools.partial(_host_eval, steps, self.x[start:start + size],
                                              self.y[start:start + size])


class IterableSource:
    """Batches from any re-iterable of ``(x, y)`` pairs (e.g. a grain loader or a generator
    factory). ``set_epoch(epoch)`` is called before each epoch when the object has it."""

    def __init__(self, data: Iterable, *, what: str):
        self.data, self.what = data, what

    def __len__(self) -> int:
        return len(self.data)

    def has_len(self) -> bool:
        return hasattr(self.data, "__len__")

    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in self.data:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ValueError(f"{self.what}: each batch must be an (x, y) pair, got {type(batch).__name__}")
            yield batch

    def train_calls(self, steps: Steps, *, seed: int, epoch: int, shuffle: bool) -> Iterator[Call]:
        if hasattr(self.data, "set_epoch"):
            self.data.set_epoch(epoch)
        for x, y in self._batches():
            yield len(x), functools.partial(_host_train, steps, x, y)

    def eval_calls(self, steps: Steps) -> Iterator[Call]:
        for x, y in self._batches():
            yield len(x), functools.partial(_host_eval, steps, x, y)


def as_source(data, batch_size: int, *, what: str, once: bool = False) -> ArraySource | IterableSource:
    """``(x, y)`` arrays → :class:`ArraySource`; anything else iterable → :class:`IterableSource`
    (which must be re-iterable unless it is read ``once``)."""
    if isinstance(data, tuple) and len(data) == 2 and all(hasattr(a, "shape") for a in data):
        return ArraySource(data[0], data[1], batch_size, what=what)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, np.ndarray)):
        if not once and iter(data) is data:
            raise ValueError(f"{what}: got a one-shot iterator, but every epoch iterates the data again; "
                             "pass a re-iterable object (a list, or a class whose __iter__ starts over)")
        return IterableSource(data, what=what)
    raise TypeError(f"{what}: expected a tuple (x, y) of arrays or an iterable of (x, y) batches, "
                    f"got {type(data).__name__}")


def _gather_train(steps, x, y, order, start, size, carry, rngs, key):
    return steps.train_gather(carry, rngs, key, x, y, order, start, size=size)


def _host_train(steps, x, y, carry, rngs, key):
    return steps.train_batch(carry, rngs, key, x, y)


def _gather_eval(steps, x, y, start, size, params, state, rngs, sums):
    return steps.eval_gather(params, state, rngs, sums, x, y, start, size=size)


def _host_eval(steps, x, y, params, state, rngs, sums):
    return steps.eval_batch(params, state, rngs, sums, x, y)
