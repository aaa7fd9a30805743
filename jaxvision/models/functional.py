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
"""

from collections.abc import Sequence

import jax
from flax import nnx

from jaxvision.models.base import Model, Tap, keras_name

INPUT = "input_layer"  # the graph's input; Keras's name for it, never a layer here


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

    Attributes set by ``GraphBuilder.finish``: ``graph`` (per layer in creation order: its
    name, input names, whether it takes a list, and the outputs no later layer needs),
    ``output_name`` and ``layer_names`` (Keras's order).
    """

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        values = {INPUT: x}
        for name, inputs, takes_list, finished in self.graph:
            args = [values[i] for i in inputs]
            values[name] = self.call_layer(name, args if takes_list else args[0], tap)
            for done in finished:  # let eager runs free what no later layer reads
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
        self.nodes: list[tuple[str, tuple[str, ...], bool]] = []
        self.counts: dict[str, int] = {}

    def auto_name(self, stem: str) -> str:
        """Keras's automatic name: ``stem``, then ``stem_1``, ``stem_2``…"""
        count = self.counts.get(stem, 0)
        self.counts[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"

    def __call__(self, layer: nnx.Module, inputs: str | Sequence[str], name: str | None = None) -> str:
        """Store ``layer`` as ``name`` (default: Keras's automatic name for its class; it becomes
        the layer's ``name`` too), applied to ``inputs`` (a layer name, or a list of them for a
        merge layer); returns ``name``."""
        name = name or self.auto_name(keras_name(layer))
        if name == INPUT or any(name == n for n, _, _ in self.nodes):
            raise ValueError(f"{type(self.model).__name__}: duplicate layer name {name!r}")
        takes_list = not isinstance(inputs, str)
        inputs = tuple(inputs) if takes_list else (inputs,)
        known = {INPUT, *(n for n, _, _ in self.nodes)}
        if any(i not in known for i in inputs):
            raise ValueError(f"{type(self.model).__name__}: layer {name!r} reads {inputs}, not all built yet")
        layer.name = name
        setattr(self.model, name, layer)
        self.nodes.append((name, inputs, takes_list))
        return name

    def finish(self, output: str) -> None:
        """Record the graph on the model, with ``output`` as the model's output."""
        last_use = {}
        for i, (_, inputs, _) in enumerate(self.nodes):
            for name in inputs:
                last_use[name] = i
        finished = [[] for _ in self.nodes]
        for name, i in last_use.items():
            if name != output:
                finished[i].append(name)
        self.model.graph = tuple((name, inputs, takes_list, tuple(done))
                                 for (name, inputs, takes_list), done in zip(self.nodes, finished))
        self.model.output_name = output
        self.model.layer_names = keras_layer_order([(n, i) for n, i, _ in self.nodes], output)
