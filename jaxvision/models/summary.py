"""``summary(model, input_shape)``: a table like Keras's ``model.summary()``."""

from jaxvision.layers.base import count_params
from jaxvision.models.base import Model


def summary(model: Model, input_shape: tuple[int, ...], *, print_fn=print) -> str:
    """Print and return one row per tapped layer (name, type, output shape, parameters) and
    the totals as Keras counts them: trainable parameters, and non-trainable ones (frozen
    parameters, see ``Layer.trainable``, plus BatchNorm moving statistics).

    >>> from jaxvision.models import build_model
    >>> _ = summary(build_model("mnist_convnet"), (1, 28, 28, 1), print_fn=lambda s: None)
    >>> _.splitlines()[-3]
    'Total params: 372,234'
    """
    rows = [("Layer", "Type", "Output shape", "Params")]
    for name, shape in model.layer_shapes(input_shape).items():
        layer = getattr(model, name, None)
        params = "" if layer is None else f"{sum(count_params(layer)):,}"
        kind = type(layer).__name__ if layer is not None else "(op)"
        rows.append((name, kind, str((None, *shape[1:])), params))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = "─" * (sum(widths) + 6)
    fmt = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    trainable, non_trainable = count_params(model)
    text = "\n".join([f"Model: {type(model).__name__}", line, fmt(rows[0]), line,
                      *map(fmt, rows[1:]), line,
                      f"Total params: {trainable + non_trainable:,}",
                      f"Trainable params: {trainable:,}",
                      f"Non-trainable params: {non_trainable:,}"])
    print_fn(text)
    return text
