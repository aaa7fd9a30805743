"""Keras-functional graphs as jaxvision models: what ``keras.applications`` builds, node for node.

A [GraphBuilder][jaxvision.models.functional.GraphBuilder] records layer calls and merge operations the way Keras's functional
API does (``x = layer(x)``, ``add([x, shortcut])``); [Functional][jaxvision.models.functional.Functional] runs the recorded
graph. Its ``layer_names`` are the order of Keras's ``model.layers``, computed by Keras's own
rule (``keras.src.ops.function.map_graph``: by depth from the output, ties in depth-first
traversal order), because weight files depend on that order: legacy ``.h5`` files pair layers
by it and ``.weights.h5`` files count layers of each class in it. Operations that are not
Keras layers (``x + 3.0`` in MobileNetV3's hard sigmoid, ConvNeXt's residual ``inputs + x``)
are nodes too, since they change depths, but they have no name to tap.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models.base import Model, Tap, keras_name

INPUT = "input_layer"
# Weightless Keras layers (tapped under their name) and plain operations (not tapped).
MERGES = {"add": lambda xs, _: sum(xs[1:], xs[0]),
          "multiply": lambda xs, _: jax.tree.reduce(jnp.multiply, list(xs)),
          "concatenate": lambda xs, _: jnp.concatenate(xs, axis=-1)}
OPERATIONS = {"add_scalar": lambda xs, c: xs[0] + c, "multiply_scalar": lambda xs, c: xs[0] * c,
              "add_tensors": MERGES["add"]}


class GraphBuilder:
    """Record a functional graph: ``x = g(layer, x)``, ``x = g.merge("add", x, y, name=...)``.

    Names are the layers' ``name`` or, for unnamed layers, Keras's default name for a fresh
    session (``global_average_pooling2d``, ``re_lu_3``…).
    """

    def __init__(self):
        self.nodes: list[tuple[str, str, tuple[str, ...], float | None]] = []
        self.layers: dict[str, nnx.Module] = {}
        self.tapped_operations: set[str] = set()
        self._counts: dict[str, int] = {}

    def auto_name(self, stem: str) -> str:
        """Keras's default name for the next unnamed layer of this stem in a fresh session."""
        count = self._counts.get(stem, 0)
        self._counts[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"

    def __call__(self, layer: nnx.Module, x: str, name: str | None = None) -> str:
        name = name or getattr(layer, "name", None) or self.auto_name(keras_name(layer))
        if name in self.layers or name == INPUT:
            raise ValueError(f"GraphBuilder: duplicate layer name {name!r}")
        self.layers[name] = layer
        self.nodes.append((name, "layer", (x,), None))
        return name

    def merge(self, kind: str, *inputs: str, name: str | None = None) -> str:
        """A weightless Keras merge layer (``Add``, ``Multiply``, ``Concatenate``)."""
        name = name or self.auto_name(kind)
        self.nodes.append((name, kind, tuple(inputs), None))
        return name

    def operation(self, kind: str, *inputs: str, constant: float | None = None, tap: str | None = None) -> str:
        """A Keras operation that is not a layer: ``x + c``, ``x * c``, ``x + y``. Keras gives it
        no name; ``tap`` names its output for ``intermediates`` and Grad-CAM all the same (not a
        Keras layer, so not in ``layer_names``)."""
        name = tap or f"{kind}_operation_{len(self.nodes)}"
        self.nodes.append((name, kind, tuple(inputs), constant))
        if tap:
            self.tapped_operations.add(name)
        return name


def keras_layer_order(nodes: Sequence[tuple[str, str, tuple[str, ...], object]], output: str) -> list[str]:
    """Node names in Keras's ``model.layers`` order (``map_graph``): decreasing depth (longest
    path to the output), ties broken by first visit in a depth-first walk from the output."""
    inputs = {INPUT: ()} | {name: parents for name, _, parents, _ in nodes}
    visit_index: dict[str, int] = {}
    finished: set[str] = set()
    post_order: list[str] = []
    visit_index[output] = 0
    stack = [(output, iter(inputs[output]))]
    while stack:  # iterative version of Keras's recursive _build_map_helper
        name, parents = stack[-1]
        for parent in parents:
            if parent not in finished:
                visit_index.setdefault(parent, len(visit_index))
                stack.append((parent, iter(inputs[parent])))
                break
        else:
            stack.pop()
            finished.add(name)
            post_order.append(name)
    depth: dict[str, int] = {}
    for name in reversed(post_order):
        d = depth.setdefault(name, 0)
        for parent in inputs[name]:
            depth[parent] = max(d + 1, depth.get(parent, 0))
    return sorted(post_order, key=lambda n: (-depth[n], visit_index[n]))


class Functional(Model):
    """A model running a [GraphBuilder][jaxvision.models.functional.GraphBuilder]'s graph; each layer is an attribute under its
    Keras name, each Keras layer's output is tapped under its name.

    Args:
      graph: the recorded graph.
      output: the node whose value the model returns.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Conv2D
        >>> g = GraphBuilder()
        >>> x = g(Conv2D(3, 3, 1, rngs=nnx.Rngs(0), name="conv"), INPUT)
        >>> y = g(Conv2D(3, 3, 1, rngs=nnx.Rngs(0), name="branch"), INPUT)
        >>> model = Functional(g, g.merge("add", x, y))
        >>> model.layer_names, model(jnp.ones((1, 4, 4, 3))).shape
        (('conv', 'branch', 'add'), (1, 4, 4, 3))
    """

    def __init__(self, graph: GraphBuilder, output: str):
        order = keras_layer_order(graph.nodes, output)
        kinds = {name: kind for name, kind, _, _ in graph.nodes}
        self.layer_names = tuple(n for n in order if n != INPUT and kinds[n] not in OPERATIONS)
        for name in self.layer_names:
            if name in graph.layers:
                setattr(self, name, graph.layers[name])
        reached = set(order)
        self.graph = tuple(node for node in graph.nodes if node[0] in reached)
        self.tapped_operations = tuple(sorted(graph.tapped_operations & reached))
        self.output_name = output

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        last_use = {parent: i for i, (_, _, parents, _) in enumerate(self.graph) for parent in parents}
        values = {INPUT: x}
        for i, (name, kind, parents, constant) in enumerate(self.graph):
            args = [values[p] for p in parents]
            for parent in parents:
                if last_use[parent] == i and parent != self.output_name:
                    values.pop(parent, None)  # free activations no later node reads (eager calls)
            if kind == "layer":
                values[name] = self.call_layer(name, args[0], tap)
            elif kind in MERGES:
                values[name] = tap(name, MERGES[kind](args, constant))
            else:
                value = OPERATIONS[kind](args, constant)
                values[name] = tap(name, value) if name in self.tapped_operations else value
        return values[self.output_name]
