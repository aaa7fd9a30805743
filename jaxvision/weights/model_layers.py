"""The model side of weight import/export: a jaxvision model's Keras layers, in Keras's order.

A *Keras layer* is a module that holds weights itself (``nnx.Param`` or ``nnx.BatchStat``
attributes). Layers are found by walking the model in its ``layer_names`` order (the order of
Keras's ``model.layers``; every jaxvision model records it), falling back to attribute order
for composite layers without one. The walk goes on inside a layer that holds weights, as
Keras 3 saves a custom layer's tracked sublayers (a forked ``SeparableConv2D`` with its own
kernels and a nested ``pointwise_bn``: two layers, ``sepbn`` and ``sepbn/pointwise_bn``). The
layer's name is its attribute name (joined with ``/`` for layers nested inside another
layer), which is why jaxvision models name their attributes after Keras layers.

Every weight of the model must belong to one of these layers: a weight the walk cannot
reach (held in a list or dict attribute, say) is an error naming its path, never left out.
"""

from flax import nnx

from jaxvision.layers.base import sublayers

# Keras-2 and TF.js spellings of variables that Keras 3 renamed, per layer class.
VARIABLE_ALIASES = {"DepthwiseConv2D": {"depthwise_kernel": "kernel"}}
WEIGHT_TYPES = (nnx.Param, nnx.BatchStat)
KERAS_ORDER = ("kernel", "depthwise_kernel", "pointwise_kernel", "bias", "gamma", "beta", "moving_mean",
               "moving_variance", "mean", "variance", "count")  # the last three: Normalization's


def _attributes(module: nnx.Module):
    return [(k, v) for k, v in vars(module).items() if not k.startswith("_")]


def layer_variables(layer: nnx.Module) -> list[tuple[str, nnx.Variable]]:
    """The layer's weights in Keras's order (the order Keras creates them: trainable ones,
    then the non-trainable statistics), whatever order NNX keeps the attributes in."""
    found = [(k, v) for k, v in _attributes(layer) if isinstance(v, WEIGHT_TYPES)]
    return sorted(found, key=lambda item: (isinstance(item[1], nnx.BatchStat),
                                           KERAS_ORDER.index(item[0]) if item[0] in KERAS_ORDER else len(KERAS_ORDER)))


def keras_layers(model: nnx.Module) -> dict[str, nnx.Module]:
    """Every layer that holds weights, by name, in the model's (Keras) order: a layer comes
    before the layers nested in it.

    Raises:
      ValueError: the model holds weights itself, or holds weights no layer attribute reaches
        (naming their paths), so a weight file could not carry them.
    """
    layers: dict[str, nnx.Module] = {}

    def walk(module: nnx.Module, prefix: str) -> None:
        for key, value in sublayers(module):
            name = f"{prefix}{key}"
            if layer_variables(value):
                layers[name] = value
            walk(value, name + "/")

    if layer_variables(model):
        raise ValueError(f"{type(model).__name__}: weights held by the model itself are not supported; "
                         "put them in named layers")
    walk(model, "")
    _check_reached(model, layers)
    return layers


def _check_reached(model: nnx.Module, layers: dict[str, nnx.Module]) -> None:
    reached = {id(variable) for layer in layers.values() for _, variable in layer_variables(layer)}
    stranded = ["/".join(map(str, path)) for path, node in nnx.iter_graph(model)
                if isinstance(node, WEIGHT_TYPES) and id(node) not in reached]
    if stranded:
        raise ValueError(
            f"{type(model).__name__}: weight(s) {stranded[:12]} are not attributes of a layer (a list, dict or "
            "other container holds them), so a Keras weight file cannot carry them; store each sublayer and "
            "each nnx.Param / nnx.BatchStat as its own attribute")


def canonical_variable_name(layer: nnx.Module, name: str) -> str:
    """``conv_dw_1/depthwise_kernel:0`` → ``kernel`` for a DepthwiseConv2D; the stem otherwise."""
    stem = name.rsplit("/", 1)[-1].split(":", 1)[0]
    return VARIABLE_ALIASES.get(type(layer).__name__, {}).get(stem, stem)
