"""``summary(model, input_shape)``: a table like Keras's ``model.summary()``."""

import math

import jax
from flax import nnx

from jaxvision.models.base import Model


def _count(node: object, kind: type) -> int:
    return sum(math.prod(v.shape) for v in jax.tree.leaves(nnx.state(node, kind)))


def summary(model: Model, input_shape: tuple[int, ...], *, print_fn=print) -> str:
    """Print and return one row per tapped layer (name, type, output shape, parameters) and
    the totals as Keras counts them: trainable ``nnx.Param`` plus non-trainable ``nnx.BatchStat``.

    >>> from jaxvision.models import build_model
    >>> _ = summary(build_model("mnist_convnet"), (1, 28, 28, 1), print_fn=lambda s: None)
    >>> _.splitlines()[-3]
    'Total params: 372,234'
    """
    rows = [("Layer", "Type", "Output shape", "Params")]
    for name, shape in model.layer_shapes(input_shape).items():
        layer = getattr(model, name, None)
        params = "" if layer is None else f"{_count(layer, nnx.Param) + _count(layer, nnx.BatchStat):,}"
        kind = type(layer).__name__ if layer is not None else "(op)"
        rows.append((name, kind, str((None, *shape[1:])), params))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = "─" * (sum(widths) + 6)
    fmt = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    trainable, stats = _count(model, nnx.Param), _count(model, nnx.BatchStat)
    text = "\n".join([f"Model: {type(model).__name__}", line, fmt(rows[0]), line,
                      *map(fmt, rows[1:]), line,
                      f"Total params: {trainable + stats:,}",
                      f"Trainable params: {trainable:,}",
                      f"Non-trainable params: {stats:,}"])
    print_fn(text)
    return text
