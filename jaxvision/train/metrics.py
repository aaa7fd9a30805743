"""Metrics as pure functions over an explicit state, so they accumulate inside ``jax.jit``.

Every metric has a ``name`` (its key in ``History.history`` and in ``evaluate``'s result)
and three functions: ``init() -> state``, ``update(state, y_true, y_pred, sample_weight=None)
-> state`` and ``result(state) -> scalar``. ``sample_weight`` (one weight per example, as in
Keras) is how evaluation masks the padding of a partial last batch. The training loop keeps the states on the device for a whole
epoch and reads the results once, as Keras's stateful metrics do.
"""

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.train.losses import EPSILON, same_rank

_LOW_BITS = 24  # IoU counts: the low word stays below 2²⁴, so it converts to float32 exactly


class Metric(Protocol):
    """What ``fit``/``evaluate`` need of a metric: a ``name``, and pure functions of an
    explicit state (``init``, ``update`` with an optional per-example ``sample_weight``,
    ``result``), so the state lives on the devices inside the jitted steps."""

    name: str

    def init(self) -> Any: ...

    def update(self, state: Any, y_true: jax.Array, y_pred: jax.Array, sample_weight: jax.Array | None = None) -> Any: ...

    def result(self, state: Any) -> jax.Array: ...


def binary_accuracy(y_true: jax.Array, y_pred: jax.Array, threshold: float = 0.5) -> jax.Array:
    """1.0 where ``y_pred > threshold`` matches the 0/1 label, elementwise."""
    y_true, y_pred = same_rank(jnp.asarray(y_true), jnp.asarray(y_pred))
    return (y_true == (y_pred > threshold).astype(y_true.dtype)).astype(jnp.float32)


def sparse_categorical_accuracy(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """1.0 where the arg-max class equals the integer label (labels may carry a trailing 1)."""
    y_true = jnp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return (jnp.argmax(y_pred, axis=-1).astype(y_true.dtype) == y_true).astype(jnp.float32)


def categorical_accuracy(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """1.0 where the arg-max class equals the arg-max of the one-hot label."""
    return (jnp.argmax(y_pred, axis=-1) == jnp.argmax(y_true, axis=-1)).astype(jnp.float32)


def accuracy(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """Keras's ``"accuracy"``: binary when the output has one unit, sparse when the labels have
    fewer axes (or a trailing 1), categorical otherwise (``compile_utils.get_metric``)."""
    if y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


@dataclass(frozen=True)
class MeanMetric:
    """The sample-weighted mean of an elementwise function, like ``keras.metrics.MeanMetricWrapper``:
    each example's values are averaged first, then examples count equally.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = MeanMetric("accuracy", accuracy)
        >>> s = m.update(m.init(), jnp.array([0, 1, 1]), jnp.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
        >>> round(float(m.result(s)), 4)
        0.6667
    """

    name: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]

    def init(self) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

    def update(self, state: tuple[jax.Array, jax.Array], y_true: jax.Array, y_pred: jax.Array,
               sample_weight: jax.Array | None = None):
        values = self.fn(y_true, y_pred)
        per_example = values.mean(axis=tuple(range(1, values.ndim)))
        weight = jnp.ones_like(per_example) if sample_weight is None else jnp.asarray(sample_weight, per_example.dtype)
        total, count = state
        return total + jnp.sum(per_example * weight), count + jnp.sum(weight)

    def result(self, state: tuple[jax.Array, jax.Array]) -> jax.Array:
        total, count = state
        return total / jnp.maximum(count, 1.0)


@dataclass(frozen=True)
class IoU:
    """Intersection over union of ``target_class_ids``, exactly ``keras.metrics.IoU``.

    A confusion matrix is accumulated over all pixels seen (exactly, beyond 2³¹ per cell:
    see [confusion_matrix][jaxvision.train.IoU.confusion_matrix]); per class
    ``IoU = TP / (TP + FP + FN)``; the result is the mean over the target classes whose
    denominator is non-zero. Labels and predictions outside ``[0, num_classes)`` and labels
    equal to ``ignore_class`` are skipped. ``sparse_y_pred=False`` takes the arg-max of
    the last axis (a softmax output); ``sparse_y_true=False`` does the same for labels.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = IoU(num_classes=2, target_class_ids=(0,))
        >>> round(float(m.result(m.update(m.init(), jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1])))), 4)
        0.3333
    """

    num_classes: int
    target_class_ids: Sequence[int]
    _: KW_ONLY
    sparse_y_true: bool = True
    sparse_y_pred: bool = True
    ignore_class: int | None = None
    name: str = "iou"

    def __post_init__(self):
        ids = tuple(int(i) for i in self.target_class_ids)
        if not ids or min(ids) < 0 or max(ids) >= self.num_classes:
            raise ValueError(f"{type(self).__name__}: target_class_ids {ids} must be non-empty and within "
                             f"[0, {self.num_classes})")
        object.__setattr__(self, "target_class_ids", ids)  # a tuple keeps the metric hashable

    def init(self) -> tuple[jax.Array, jax.Array]:
        shape = (self.num_classes, self.num_classes)
        # (high, low) words of each count: high·2²⁴ + low. Two arrays: the carry is donated.
        return jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32)

    @staticmethod
    def confusion_matrix(state: tuple[jax.Array, jax.Array]) -> np.ndarray:
        """The exact counts (int64, rows: labels, columns: predictions) held by ``state``."""
        high, low = (np.asarray(a, np.int64) for a in state)
        return (high << _LOW_BITS) + low

    def update(self, state: tuple[jax.Array, jax.Array], y_true: jax.Array, y_pred: jax.Array,
               sample_weight: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """``sample_weight``: per example (0 drops it); IoU counts are integers, so weights must be 0 or 1."""
        if not self.sparse_y_true:
            y_true = jnp.argmax(y_true, axis=-1)
        if not self.sparse_y_pred:
            y_pred = jnp.argmax(y_pred, axis=-1)
        y_true, y_pred = jnp.asarray(y_true).astype(jnp.int32), jnp.asarray(y_pred).astype(jnp.int32)
        keep = jnp.ones(y_true.shape, bool) if sample_weight is None else jnp.broadcast_to(
            jnp.reshape(jnp.asarray(sample_weight) > 0, (-1,) + (1,) * (y_true.ndim - 1)), y_true.shape)
        y_true, y_pred, keep = y_true.reshape(-1), y_pred.reshape(-1), keep.reshape(-1)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {y_true.size} labels but {y_pred.size} "
                             "predictions; with softmax outputs pass sparse_y_pred=False")
        n = self.num_classes
        valid = keep & (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)
        if self.ignore_class is not None:
            valid &= y_true != self.ignore_class
        cell = jnp.where(valid, y_true * n + y_pred, 0)  # row: label, column: prediction
        counts = jnp.bincount(cell, weights=valid.astype(jnp.int32), length=n * n)
        # One int32 would wrap after 2³¹ pixels in a cell (an epoch of 200 px masks can get
        # there); carrying into a high word keeps counts exact up to 2⁵⁵ without int64.
        high, low = state
        low = low + counts.reshape(n, n).astype(jnp.int32)
        return high + (low >> _LOW_BITS), low & ((1 << _LOW_BITS) - 1)

    def result(self, state: tuple[jax.Array, jax.Array]) -> jax.Array:
        high, low = state
        matrix = high.astype(jnp.float32) * float(1 << _LOW_BITS) + low.astype(jnp.float32)
        true_positives = jnp.diag(matrix)
        denominator = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positives
        ids = jnp.array(self.target_class_ids)
        tp, denominator = true_positives[ids], denominator[ids]
        present = denominator > 1e-9  # classes never seen nor predicted do not count
        iou = jnp.where(present, tp / (denominator + EPSILON), 0.0)
        return iou.sum() / (present.sum().astype(jnp.float32) + EPSILON)


class MeanIoU(IoU):
    """``keras.metrics.MeanIoU``: [IoU][jaxvision.train.IoU] averaged over every class.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = MeanIoU(2)
        >>> round(float(m.result(m.update(m.init(), jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1])))), 4)
        0.3333
    """

    def __init__(self, num_classes: int, *, sparse_y_true: bool = True, sparse_y_pred: bool = True,
                 ignore_class: int | None = None, name: str = "mean_iou"):
        super().__init__(num_classes, tuple(range(num_classes)), sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, ignore_class=ignore_class, name=name)


METRICS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
}


def get_metric(metric: str | Metric | Callable) -> Metric:
    """A metric name (see ``METRICS``), a [Metric][jaxvision.train.Metric] object, or an elementwise function
    ``(y_true, y_pred) -> values`` averaged like Keras (named after the function)."""
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}, or pass a Metric object")
        return MeanMetric(metric, METRICS[metric])
    if all(hasattr(metric, a) for a in ("name", "init", "update", "result")):
        return metric
    if callable(metric):
        return MeanMetric(metric.__name__, metric)
    raise TypeError(f"metrics must be names, Metric objects or functions, got {metric!r}")
