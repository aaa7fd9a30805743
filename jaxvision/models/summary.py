"""``summary(model, input_shape)``: Keras's ``model.summary(expand_nested=True)`` table.

An ``InputLayer`` row, then every sublayer, nested ones indented under their parent, with its
output shape and its parameter count; tapped operations that are not stored layers (``"add"``)
get a row with 0 parameters and the Keras class of their operation (``Add``). For a model with
branches (a row with two inputs, or an output read by two rows), a "Connected to" column names
each top-level row's inputs, as Keras does. The totals give the weights' sizes in bytes, as
Keras does ("372,234 (1.42 MB)"). Output shapes and connections come from one abstract trace
(``jax.make_jaxpr``, nothing computed): taps give the named outputs, and, for layers no tap
names, each layer class's ``__call__`` is wrapped for the duration of the trace to note what it
returned; a row's inputs are the nearest named values its output is computed from.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.extend.core import Var

from jaxvision.layers.base import count_params, sublayers, weight_states
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


# The Keras layer class of a tapped operation, by the primitive that computed it.
OPERATIONS = {"add": "Add", "add_any": "Add", "sub": "Subtract", "mul": "Multiply", "max": "Maximum",
              "min": "Minimum", "concatenate": "Concatenate"}
INPUT = "input_layer"


def _output_shapes(model: nnx.Module, input_shape: tuple[int, ...]
                   ) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """Path or tap name → output shape, parents before their children, in forward order; each
    top-level row's inputs (the nearest named values its output is computed from, ``INPUT`` for
    the model's input); and the operation (``"add"``) that computed each tapped value."""
    graphdef, state = nnx.split(model)
    shapes: dict[str, str] = {}
    values: dict[str, object] = {}
    outputs: list[str] = []  # the paths whose output's first array is one of the jaxpr's outputs

    def note(path: str, value: object) -> None:
        parts = path.split("/")
        for depth in range(1, len(parts)):  # a nested model's row comes before its layers'
            shapes.setdefault("/".join(parts[:depth]), "?")
        if value is None:
            shapes.setdefault(path, "?")
        else:
            shapes[path], values[path] = _shape(value), value

    def trace(state: nnx.State, x: jax.Array) -> list:
        view = nnx.merge(graphdef, state)
        with _calls_recorded(view, note):
            if isinstance(view, Model):
                tap = Recorder()  # for its check that every tap name is unique
                view.forward(x, lambda name, value: (note(name, value), tap(name, value))[1])
            elif not sublayers(view):  # a single layer: its own row
                note("", view(x))
            else:
                view(x)
        outputs.extend(path for path, value in values.items() if jax.tree.leaves(value))
        return [jax.tree.leaves(values[path])[0] for path in outputs]

    jaxpr = jax.make_jaxpr(trace)(state, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)).jaxpr
    producers = {var: eqn for eqn in jaxpr.eqns for var in eqn.outvars}
    named = {jaxpr.invars[-1]: INPUT}  # variable → the row that last produced it, in forward order

    def inputs_of(var) -> list[str]:
        """The named values ``var`` is computed from, depth first in argument order (a loop, not
        recursion: a large layer's equations run deep)."""
        found, seen = [], set()
        stack = [s for s in reversed(producers[var].invars) if isinstance(s, Var)] if var in producers else []
        while stack:
            source = stack.pop()
            if source in seen:
                continue
            seen.add(source)
            if source in named:
                if named[source] not in found:
                    found.append(named[source])
            elif source in producers:
                stack.extend(s for s in reversed(producers[source].invars) if isinstance(s, Var))
        return found

    connections, operations = {}, {}
    for path, var in zip(outputs, jaxpr.outvars, strict=True):
        if "/" in path or not path or not isinstance(var, Var):
            continue
        # An identity (dropout at inference) returns its input: it reads the row before it.
        connections[path] = [named[var]] if var in named else inputs_of(var)
        if var in producers:
            operations[path] = producers[var].primitive.name
        named[var] = path
    return shapes, connections, operations


def _all_paths(module: nnx.Module, prefix: str = "") -> list[str]:
    paths = []
    for name, child in sublayers(module):
        paths.append(prefix + name)
        paths += _all_paths(child, f"{prefix}{name}/")
    return paths


def _readable_size(size: float) -> str:
    """Keras's ``readable_memory_size``: 1,488,936 → "1.42 MB"."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _weight_bytes(module: nnx.Module) -> tuple[int, int]:
    """``(trainable, non_trainable)`` sizes in bytes of the weights ``count_params`` counts."""
    return tuple(sum(math.prod(v.shape) * v.dtype.itemsize for v in jax.tree.leaves(state))
                 for state in weight_states(module))


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    """Keras's box table: a heavy header, then light rows."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def border(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    def line(row: tuple[str, ...], bar: str) -> str:
        return bar + bar.join(f" {cell:{'>' if i in right else '<'}{w}} " for i, (cell, w) in enumerate(zip(row, widths))) + bar

    out = [border("┏", "━", "┳", "┓"), line(rows[0], "┃"), border("┡", "━", "╇", "┩")]
    for i, row in enumerate(rows[1:]):
        out += ([border("├", "─", "┼", "┤")] if i else []) + [line(row, "│")]
    return out + [border("└", "─", "┴", "┘")]


def summary(model: nnx.Module, input_shape: tuple[int, ...], *, print_fn: Callable[[str], None] | None = print
            ) -> str:
    """Print (with ``print_fn``) and return Keras's summary table: an ``InputLayer`` row, then
    every sublayer — name (type), output shape, parameters and, for a model with branches,
    the rows it reads ("Connected to") — nested layers indented, then the totals as Keras
    counts them, with their sizes: trainable parameters, and non-trainable ones (frozen
    parameters, see ``Layer.trainable``, plus BatchNorm moving statistics). Works for any
    ``nnx.Module`` that ``fit`` accepts; a layer never called in the forward pass shows ``?``
    as its shape.

    Examples:
        >>> from jaxvision.models import build_model
        >>> text = summary(build_model("mnist_convnet"), (1, 28, 28, 1), print_fn=None)
        >>> for row in text.splitlines()[4:7:2]:
        ...     print(" ".join(row.split()))
        │ input_layer (InputLayer) │ (None, 28, 28, 1) │ 0 │
        │ conv2d (Conv2D) │ (None, 26, 26, 64) │ 640 │
        >>> text.splitlines()[-3]
        ' Total params: 372,234 (1.42 MB)'
    """
    shapes, connections, operations = _output_shapes(model, input_shape)
    paths = list(shapes) + [p for p in _all_paths(model) if p not in shapes]
    branched = (any(len(inputs) > 1 for inputs in connections.values())
                or any(sum(name in inputs for inputs in connections.values()) > 1 for name in connections))
    rows = [("Layer (type)", "Output Shape", "Param #", "Connected to"),
            (f"{INPUT} (InputLayer)", str((None, *input_shape[1:])), "0", "-")]
    for path in paths:
        layer = model if path == "" else sublayer(model, path)
        kind = type(layer).__name__ if layer is not None else OPERATIONS.get(operations.get(path), "op")
        label = path.rsplit("/", 1)[-1] or type(model).__name__
        params = sum(count_params(layer)) if layer is not None else 0
        inputs = ", ".join(f"{name}[0][0]" for name in connections.get(path, []))
        rows.append(("  " * path.count("/") + f"{label} ({kind})", shapes.get(path, "?"), f"{params:,}", inputs))
    if not branched:
        rows = [row[:3] for row in rows]
    (trainable, non_trainable), (trainable_bytes, non_trainable_bytes) = count_params(model), _weight_bytes(model)
    text = "\n".join([f'Model: "{type(model).__name__}"', *_table(rows, right={2}),
                      f" Total params: {trainable + non_trainable:,} "
                      f"({_readable_size(trainable_bytes + non_trainable_bytes)})",
                      f" Trainable params: {trainable:,} ({_readable_size(trainable_bytes)})",
                      f" Non-trainable params: {non_trainable:,} ({_readable_size(non_trainable_bytes)})"])
    if print_fn is not None:
        print_fn(text)
    return text
