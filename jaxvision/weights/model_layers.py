"""The model side of weight import/export: a jaxvision model's Keras layers, in Keras's order.

A *Keras layer* is a module that holds weights itself (``nnx.Param`` or ``nnx.BatchStat``
attributes). Layers are found by walking the model in its ``layer_names`` order (the order of
Keras's ``model.layers``; every jaxvision model records it), falling back to attribute order
for composite layers without one. The layer's name is its attribute name (joined with ``/``
for layers nested inside a composite layer), which is why jaxvision models name their
attributes after Keras layers.
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
    """Every layer that holds weights, by name, in the model's (Keras) order."""
    layers: dict[str, nnx.Module] = {}

    def walk(module: nnx.Module, prefix: str) -> None:
        for key, value in sublayers(module):
            name = f"{prefix}{key}"
            if layer_variables(value):
                layers[name] = value
            else:
                walk(value, name + "/")

    if layer_variables(model):
        raise ValueError(f"{type(model).__name__}: weights held by the model itself are not supported; "
                         "put them in named layers")
    walk(model, "")
    return layers


def canonical_variable_name(layer: nnx.Module, name: str) -> str:
    """``conv_dw_1/depthwise_kernel:0`` → ``kernel`` for a DepthwiseConv2D; the stem otherwise."""
    stem = name.rsplit("/", 1)[-1].split(":", 1)[0]
    return VARIABLE_ALIASES.get(type(layer).__name__, {}).get(stem, stem)
