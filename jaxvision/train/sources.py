"""Where batches come from: in-memory ``(x, y)`` arrays, or an iterable of ``(x, y)`` batches.

Arrays that fit (``DEVICE_LIMIT_BYTES``) are uploaded once, split by rows over the mesh's
``"data"`` axis, and every batch is gathered on the devices inside the jitted step, so an
accelerator is never waiting for the host (XLA gathers each device's rows locally and sums
the pieces: only the batch crosses devices, never the data set). Larger arrays are sliced on the host. Either
way, each process reads only the rows its own devices hold. The shuffled order of an epoch
is a pure function of ``(seed, epoch)``, which is what makes a resumed run repeat the same
batches (and every process agree on them).

Batches from an iterable are this process's part of the global batch; they are uploaded
``PREFETCH`` steps ahead, so the host prepares the next batches while the devices
compute (dispatch is asynchronous).

Training batches must split evenly over the devices (a partial last batch is computed
replicated instead). Evaluation pads a partial batch to the full size and masks the
padding, so every example counts exactly once.

Each source yields, per batch, its size and a ``run(*leading_args)`` that calls the
matching compiled step with the batch appended.
"""

import collections
import functools
import math
from collections.abc import Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.train.sharding import Placement, pad_index, pad_rows
from jaxvision.train.steps import Steps

DEVICE_LIMIT_BYTES = 1 << 30
PREFETCH = 2

Call = tuple[int, Callable]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of ``epoch``: the same for the same (seed, epoch).

    Examples:
        >>> epoch_order(5, seed=0, epoch=1).tolist() == epoch_order(5, seed=0, epoch=1).tolist()
        True
    """
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def prefetch(items: Iterable, depth: int = PREFETCH) -> Iterator:
    """Yield ``items`` while keeping ``depth`` more already produced (uploads started).

    Examples:
        >>> made = []
        >>> def batches():
        ...     for i in range(5):
        ...         made.append(i)
        ...         yield i
        >>> ahead = prefetch(batches())
        >>> next(ahead), made  # batch 0 is handed out with batches 1 and 2 already made
        (0, [0, 1, 2])
        >>> list(ahead)
        [1, 2, 3, 4]
    """
    queue = collections.deque()
    for item in items:
        queue.append(item)
        if len(queue) > depth:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


class ArraySource:
    """Batches of ``batch_size`` (the last one may be smaller) from two aligned arrays."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, placement: Placement, *, what: str):
        if len(x) != len(y):
            raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{what}: no examples")
        placement.check_batch_size(batch_size, what=what)
        self.n, self.batch_size, self.placement = len(x), batch_size, placement
        self.example = example_spec(x)
        self.resident = x.nbytes + y.nbytes < DEVICE_LIMIT_BYTES
        if self.resident:  # rows padded to split evenly; the padding is never gathered
            rows = np.minimum(np.arange(placement.padded(self.n)), self.n - 1)
            self.x, self.y = (placement.rows(a, rows, placement.batched) for a in (x, y))
            self.count = placement.replicate(jnp.asarray(self.n, jnp.int32))
        else:
            self.x, self.y = x, y

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _spans(self) -> Iterator[tuple[int, int]]:
        for start in range(0, self.n, self.batch_size):
            yield start, min(self.batch_size, self.n - start)

    def train_calls(self, steps: Steps, *, seed: int, epoch: int, shuffle: bool) -> Iterator[Call]:
        order = epoch_order(self.n, seed, epoch) if shuffle else np.arange(self.n, dtype=np.int32)
        if self.resident:
            order = self.placement.replicate(order)
            for start, size in self._spans():
                yield size, functools.partial(_gather_train, steps, self.x, self.y, order, start, size)
            return
        yield from prefetch(self._train_uploads(steps, order))

    def _train_uploads(self, steps: Steps, order: np.ndarray) -> Iterator[Call]:
        put = self.placement.rows
        for start, size in self._spans():
            index, layout = order[start:start + size], self.placement.layout(size)
            yield size, functools.partial(_host_train, steps, put(self.x, index, layout), put(self.y, index, layout))

    def eval_calls(self, steps: Steps) -> Iterator[Call]:
        size = min(self.batch_size, self.placement.padded(self.n))
        if self.resident:
            for start, real in self._spans():
                yield real, functools.partial(_gather_eval, steps, self.x, self.y, start, self.count, size)
        else:
            yield from prefetch(self._eval_uploads(steps, size))

    def _eval_uploads(self, steps: Steps, size: int) -> Iterator[Call]:
        put, batched = self.placement.rows, self.placement.batched
        for start, real in self._spans():
            index, mask = pad_index(start, size, self.n)
            yield real, functools.partial(_host_eval, steps, put(self.x, index, batched), put(self.y, index, batched),
                                          put(mask, np.arange(size), batched))


class IterableSource:
    """Batches from any re-iterable of ``(x, y)`` pairs (e.g. a grain loader or a generator
    factory). ``set_epoch(epoch)`` is called before each epoch when the object has it."""

    def __init__(self, data: Iterable, placement: Placement, *, what: str):
        self.data, self.placement, self.what = data, placement, what
        self.example: jax.ShapeDtypeStruct | None = None  # known from the first batch on

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
        yield from prefetch(self._train_uploads(steps))

    def _train_uploads(self, steps: Steps) -> Iterator[Call]:
        put = functools.partial(self.placement.local_batch, what=self.what)
        for i, (x, y) in enumerate(self._batches()):
            if i == 0:  # a partial last batch may not split, but full batches must
                self.placement.check_batch_size(len(x) * jax.process_count(), what=f"{self.what} (its first batch)")
                self.example = example_spec(x)
            yield len(x), functools.partial(_host_train, steps, put(x), put(y))

    def eval_calls(self, steps: Steps) -> Iterator[Call]:
        yield from prefetch(self._eval_uploads(steps))

    def _eval_uploads(self, steps: Steps) -> Iterator[Call]:
        size, local_devices = 0, self.placement.devices // jax.process_count()
        for x, y in self._batches():
            size = max(size, -(-len(x) // local_devices) * local_devices)  # pad to split evenly
            put = functools.partial(self.placement.local_batch, what=self.what)
            yield len(x), functools.partial(_host_eval, steps, put(pad_rows(x, size)), put(pad_rows(y, size)),
                                            put(np.arange(size) < len(x)))


def example_spec(x) -> jax.ShapeDtypeStruct:
    """The shape and dtype of one example of the batch (or data set) ``x``.

    Examples:
        >>> example_spec(np.zeros((64, 28, 28, 1), np.uint8))
        ShapeDtypeStruct(shape=(28, 28, 1), dtype=uint8)
    """
    return jax.ShapeDtypeStruct(tuple(np.shape(x)[1:]), x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)


def as_source(data, batch_size: int, placement: Placement, *, what: str,
              once: bool = False) -> ArraySource | IterableSource:
    """``(x, y)`` arrays → ``ArraySource``; anything else iterable → ``IterableSource``
    (which must be re-iterable unless it is read ``once``)."""
    if isinstance(data, tuple) and len(data) == 2 and all(hasattr(a, "shape") for a in data):
        return ArraySource(data[0], data[1], batch_size, placement, what=what)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, np.ndarray)):
        if not once and iter(data) is data:
            raise ValueError(f"{what}: got a one-shot iterator, but every epoch iterates the data again; "
                             "pass a re-iterable object (a list, or a class whose __iter__ starts over)")
        return IterableSource(data, placement, what=what)
    raise TypeError(f"{what}: expected a tuple (x, y) of arrays or an iterable of (x, y) batches, "
                    f"got {type(data).__name__}")


def _gather_train(steps, x, y, order, start, size, carry, rngs, key):
    return steps.train_gather(carry, rngs, key, x, y, order, start, size=size)


def _host_train(steps, x, y, carry, rngs, key):
    return steps.train_batch(carry, rngs, key, x, y)


def _gather_eval(steps, x, y, start, count, size, params, state, rngs, sums):
    return steps.eval_gather(params, state, rngs, sums, x, y, start, count, size=size)


def _host_eval(steps, x, y, mask, params, state, rngs, sums):
    return steps.eval_batch(params, state, rngs, sums, x, y, mask)
