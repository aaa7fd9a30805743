"""``summary(model, input_shape)``: a table like Keras's ``model.summary(expand_nested=True)``.

Every sublayer gets a row, nested ones indented under their parent, with its output shape and
its parameter count; tapped operations that are not stored layers (``"add"``) get a row with
0 parameters. Output shapes come from one abstract trace (``jax.eval_shape``, nothing
computed): taps give the named outputs, and, for layers no tap names, each layer class's
``__call__`` is wrapped for the duration of the trace to note what it returned.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers.base import count_params, sublayers
from jaxvision.models.base import Model, Recorder, intercepted_calls, sublayer


def _shape(value: object) -> str:
    shapes = [(None, *leaf.shape[1:]) for leaf in jax.tree.leaves(value) if hasattr(leaf, "shape")]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _calls_recorded(root: nnx.Module, record: Callable[[str, object], None]):
    """While active, every call of a module of ``root`` reports ``(path, output)`` at its start
    (for the row order: parents before children) and its end (for the shape)."""
    paths = {id(node): "/".join(map(str, path)) for path, node in nnx.iter_graph(root)
             if isinstance(node, nnx.Module) and path}

    def around(path: str, call: Callable[[], object]) -> object:
        record(path, None)
        out = call()
        record(path, out)
        return out

    return intercepted_calls(root, paths, around)


def _output_shapes(model: nnx.Module, input_shape: tuple[int, ...]) -> dict[str, str]:
    """Path or tap name → output shape, parents before their children, in forward order."""
    graphdef, state = nnx.split(model)
    shapes: dict[str, str] = {}

    def note(path: str, value: object) -> None:
        parts = path.split("/")
        for depth in range(1, len(parts)):  # a nested model's row comes before its layers'
            shapes.setdefault("/".join(parts[:depth]), "?")
        if value is None:
            shapes.setdefault(path, "?")
        else:
            shapes[path] = _shape(value)

    def trace(state: nnx.State, x: jax.Array) -> None:
        view = nnx.merge(graphdef, state)
        with _calls_recorded(view, note):
            if isinstance(view, Model):
                tap = Recorder()  # for its check that every tap name is unique
                view.forward(x, lambda name, value: (note(name, value), tap(name, value))[1])
            elif not sublayers(view):  # a single layer: its own row
                note("", view(x))
            else:
                view(x)

    jax.eval_shape(trace, state, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    return shapes


def _all_paths(module: nnx.Module, prefix: str = "") -> list[str]:
    paths = []
    for name, child in sublayers(module):
        paths.append(prefix + name)
        paths += _all_paths(child, f"{prefix}{name}/")
    return paths


def summary(model: nnx.Module, input_shape: tuple[int, ...], *, print_fn: Callable[[str], None] | None = print
            ) -> str:
    """Print (with ``print_fn``) and return a table of every sublayer — path, type, output
    shape, parameters — nested layers indented, then the totals as Keras counts them:
    trainable parameters, and non-trainable ones (frozen parameters, see ``Layer.trainable``,
    plus BatchNorm moving statistics). Works for any ``nnx.Module`` that ``fit`` accepts; a
    layer never called in the forward pass shows ``?`` as its shape.

    Examples:
        >>> from jaxvision.models import build_model
        >>> text = summary(build_model("mnist_convnet"), (1, 28, 28, 1), print_fn=None)
        >>> for row in text.splitlines()[4:6]:
        ...     print(" ".join(row.split()))
        conv2d (Conv2D) (None, 26, 26, 64) 640
        max_pooling2d (MaxPooling2D) (None, 13, 13, 64) 0
        >>> text.splitlines()[-3]
        'Total params: 372,234'
    """
    shapes = _output_shapes(model, input_shape)
    paths = list(shapes) + [p for p in _all_paths(model) if p not in shapes]
    rows = [("Layer (type)", "Output shape", "Params")]
    for path in paths:
        layer = model if path == "" else sublayer(model, path)
        kind = type(layer).__name__ if layer is not None else "op"
        label = path.rsplit("/", 1)[-1] or type(model).__name__
        params = sum(count_params(layer)) if layer is not None else 0
        rows.append(("  " * path.count("/") + f"{label} ({kind})", shapes.get(path, "?"), f"{params:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    line = "─" * (sum(widths) + 4)
    fmt = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    trainable, non_trainable = count_params(model)
    text = "\n".join([f"Model: {type(model).__name__}", line, fmt(rows[0]), line,
                      *map(fmt, rows[1:]), line,
                      f"Total params: {trainable + non_trainable:,}",
                      f"Trainable params: {trainable:,}",
                      f"Non-trainable params: {non_trainable:,}"])
    if print_fn is not None:
        print_fn(text)
    return text
