"""``Functional``: a model written as a graph of named layers, as Keras's functional API writes it.

The keras.applications architectures are graphs (residual adds, concatenated branches). A
``Functional`` model is built in ``__init__`` with a ``GraphBuilder``, one call per
Keras layer, in the order the Keras source creates them::

    graph = GraphBuilder(self)
    x = graph(Conv2D(3, 64, 7, strides=2, rngs=rngs), graph.input, name="conv1_conv")
    x = graph(Add(), [shortcut, x], name="conv2_block1_add")
    graph.finish(x)

Each layer is stored as an attribute under its name, and its output is tapped under that name
(``intermediates``, Grad-CAM, ``summary``). A layer given no name gets the name a fresh Keras
session would give it (``conv2d``, ``conv2d_1``, … counted per class in creation order), so
auto-named Keras layers keep their names. ``layer_names`` is Keras's ``model.layers`` order,
computed by Keras's own rule (``keras.src.ops.function.map_graph``: layers by decreasing
distance to the output, ties in depth-first order from the output), which is the order
weight files list layers in; the forward pass runs the layers in creation order.

Keras operations that are not layers (``x + 3.0`` in MobileNetV3's hard sigmoid, ConvNeXt's
residual ``inputs + x``) are added with ``graph.operation``: they are nodes of the graph, since
they change the depths that order ``model.layers``, but not layers (no weights, not in
``layer_names``); ``tap=`` names one's output for ``intermediates`` and Grad-CAM all the same.
"""

from collections.abc import Sequence

import jax
from flax import nnx

from jaxvision.models.base import Model, Tap, keras_name

INPUT = "input_layer"  # the graph's input; Keras's name for it, never a layer here
# The Keras operations that are not layers, by kind: (the node's inputs, its constant) -> value.
OPERATIONS = {"add_scalar": lambda xs, c: xs[0] + c, "multiply_scalar": lambda xs, c: xs[0] * c,
              "add_tensors": lambda xs, _: sum(xs[1:], xs[0])}


def keras_layer_order(nodes: Sequence[tuple[str, tuple[str, ...]]], output: str) -> tuple[str, ...]:
    """Keras's ``model.layers`` order of a graph given as ``(name, input names)`` nodes.

    Examples:
        >>> keras_layer_order([("a", ("input_layer",)), ("b", ("a",)), ("c", ("input_layer",)),
        ...                    ("add", ("b", "c"))], "add")
        ('a', 'b', 'c', 'add')
    """
    inputs_of = dict(nodes)
    index: dict[str, int] = {output: 0}
    postorder: list[str] = []
    done: set[str] = set()
    stack = [(output, iter(inputs_of.get(output, ())))]
    while stack:  # depth-first from the output, inputs in order (iterative: graphs run 800 deep)
        name, parents = stack[-1]
        parent = next(parents, None)
        if parent is None:
            stack.pop()
            done.add(name)
            postorder.append(name)
        elif parent not in done:
            index.setdefault(parent, len(index))
            stack.append((parent, iter(inputs_of.get(parent, ()))))
    depth: dict[str, int] = {}
    for name in reversed(postorder):  # the longest path from each layer to the output
        d = depth.setdefault(name, 0)
        for parent in inputs_of.get(name, ()):
            depth[parent] = max(depth.get(parent, 0), d + 1)
    return tuple(sorted((n for n in postorder if n != INPUT), key=lambda n: (-depth[n], index[n])))


class Functional(Model):
    """Base class of the graph models; subclasses build themselves with ``GraphBuilder``.

    Attributes set by ``GraphBuilder.finish``: ``graph`` (per node in creation order: its
    name, input names, whether it takes a list, its operation (``None`` for a layer, else
    ``(kind, constant, tapped)``) and the outputs no later node needs), ``output_name`` and
    ``layer_names`` (Keras's order).
    """

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        values = {INPUT: x}
        for name, inputs, takes_list, operation, finished in self.graph:
            args = [values[i] for i in inputs]
            if operation is None:
                values[name] = self.call_layer(name, args if takes_list else args[0], tap)
            else:
                kind, constant, tapped = operation
                value = OPERATIONS[kind](args, constant)
                values[name] = tap(name, value) if tapped else value
            for done in finished:  # let eager runs free what no later node reads
                del values[done]
        return values[self.output_name]


class GraphBuilder:
    """Adds named layers and their connections to a ``Functional`` model (see the module).

    Args:
      model: the model being built (in its ``__init__``).
    """

    input = INPUT

    def __init__(self, model: Functional):
        self.model = model
        self.nodes: list[tuple[str, tuple[str, ...], bool, tuple | None]] = []
        self.counts: dict[str, int] = {}

    def auto_name(self, stem: str) -> str:
        """Keras's automatic name: ``stem``, then ``stem_1``, ``stem_2``…"""
        count = self.counts.get(stem, 0)
        self.counts[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"

    def __call__(self, layer: nnx.Module, inputs: str | Sequence[str], name: str | None = None) -> str:
        """Store ``layer`` as ``name`` (default: the layer's own ``name``, else Keras's automatic
        name for its class; it becomes the layer's ``name`` too), applied to ``inputs`` (a node
        name, or a list of them for a merge layer); returns ``name``."""
        name = name or getattr(layer, "name", None) or self.auto_name(keras_name(layer))
        takes_list = not isinstance(inputs, str)
        inputs = self._check(name, tuple(inputs) if takes_list else (inputs,))
        layer.name = name
        setattr(self.model, name, layer)
        self.nodes.append((name, inputs, takes_list, None))
        return name

    def operation(self, kind: str, *inputs: str, constant: float | None = None, tap: str | None = None) -> str:
        """A Keras operation that is not a layer, applied to ``inputs``: ``"add_scalar"``
        (``x + constant``), ``"multiply_scalar"`` (``x * constant``), ``"add_tensors"``
        (``x + y``). Keras gives it no name; ``tap`` names its output for ``intermediates`` and
        Grad-CAM all the same (it is still not in ``layer_names``). Returns the node's name."""
        if kind not in OPERATIONS:
            raise ValueError(f"{type(self.model).__name__}: unknown operation {kind!r}, "
                             f"not one of {sorted(OPERATIONS)}")
        name = tap or f"{kind}_operation_{len(self.nodes)}"
        self.nodes.append((name, self._check(name, inputs), False, (kind, constant, tap is not None)))
        return name

    def _check(self, name: str, inputs: tuple[str, ...]) -> tuple[str, ...]:
        known = {INPUT, *(n for n, *_ in self.nodes)}
        if name in known:
            raise ValueError(f"{type(self.model).__name__}: duplicate layer name {name!r}")
        if any(i not in known for i in inputs):
            raise ValueError(f"{type(self.model).__name__}: layer {name!r} reads {inputs}, not all built yet")
        return inputs

    def finish(self, output: str) -> None:
        """Record the graph on the model, with ``output`` as the model's output; layers the
        output does not depend on are dropped, as Keras's ``Functional`` drops them."""
        order = keras_layer_order([(n, i) for n, i, *_ in self.nodes], output)
        reached = set(order)
        for name, _, _, operation in self.nodes:
            if name not in reached and operation is None:
                delattr(self.model, name)
        nodes = [node for node in self.nodes if node[0] in reached]
        last_use = {}
        for i, (_, inputs, _, _) in enumerate(nodes):
            for name in inputs:
                last_use[name] = i
        finished = [[] for _ in nodes]
        for name, i in last_use.items():
            if name != output:
                finished[i].append(name)
        self.model.graph = tuple((*node, tuple(done)) for node, done in zip(nodes, finished))
        self.model.output_name = output
        operations = {name for name, _, _, operation in nodes if operation is not None}
        self.model.layer_names = tuple(n for n in order if n not in operations)
