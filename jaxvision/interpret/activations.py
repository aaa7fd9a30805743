"""Intermediate activations (DLwP listings 10.1–10.6), read through the model's taps.

Everything in [jaxvision.interpret][jaxvision.interpret] reaches layers by name through ``Model.forward(x,
tap)``: a tap records (or perturbs) the named output, so there are no hooks and no second
model. The helpers here are shared by the filter and Grad-CAM modules: an eval-mode
split of the model (jit-friendly, the caller's model is left untouched), layer-name checks,
and (through ``Recorder``) a forward that stops after the last layer it needs.
"""

import re
from collections.abc import Iterable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.base import Model, Recorder, UnknownLayerNames, sublayer


def eval_split(model: Model) -> tuple[nnx.GraphDef, nnx.State]:
    """``nnx.split`` of an eval-mode view of ``model`` (Dropout off, BatchNorm on running
    statistics). The view shares the arrays; ``model`` itself keeps its mode."""
    view = nnx.merge(*nnx.split(model))
    view.eval()
    return nnx.split(view)


def as_images(images) -> jax.Array:
    """A float array of images; integer pixels become float32 (convolutions need floats)."""
    images = jnp.asarray(images)
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32)


def check_layers(model: Model, names: Sequence[str], images: jax.ShapeDtypeStruct | jax.Array,
                 *, spatial: bool = False) -> dict[str, tuple[int, ...]]:
    """The output shapes of the named layers for inputs like ``images`` (only the shape and
    dtype are used; the model is traced only as far as the last named layer).

    ``ValueError`` listing the available names (``Model.layer_shapes``) if a name is unknown,
    or, with ``spatial=True``, if a layer's output is not an (N, H, W, C) feature map.
    """
    graphdef, state = nnx.split(model)
    try:
        found = jax.eval_shape(lambda s, x: Recorder(names, stop=True).run(nnx.merge(graphdef, s), x),
                               state, jax.ShapeDtypeStruct(images.shape, images.dtype))
    except UnknownLayerNames as error:
        raise model.unknown_layers(error, images.shape) from None
    shapes = {name: tuple(found[name].shape) for name in names}
    flat = [name for name, shape in shapes.items() if spatial and len(shape) != 4]
    if flat:
        spatial_names = [n for n, s in model.layer_shapes(images.shape).items() if len(s) == 4]
        raise ValueError(f"{type(model).__name__}: layer(s) {flat} have no (N, H, W, C) output "
                         f"(shapes {[shapes[n] for n in flat]}); spatial layers: {spatial_names}")
    return shapes


def spatial_layers(model: Model, input_shape: tuple[int, ...]) -> list[str]:
    """Every tapped name (nested paths included) with an (N, H, W, C) output, in forward order."""
    return [name for name, shape in model.layer_shapes(tuple(input_shape)).items() if len(shape) == 4]


def conv_and_pool_layers(model: Model, input_shape: tuple[int, ...]) -> list[str]:
    """Names of the convolution and pooling layers with an (N, H, W, C) output, in forward
    order — listing 10.3's choice (``isinstance(layer, (Conv2D, MaxPooling2D))``).

    A layer counts when the type of the module at that path (``sublayer``; nested models'
    layers included) has "Conv" or "Pool" in its name.
    """
    return [name for name in spatial_layers(model, input_shape)
            if re.search("Conv|Pool", type(sublayer(model, name)).__name__)]


@partial(jax.jit, static_argnames=("graphdef", "names"))
def _activations(graphdef: nnx.GraphDef, state: nnx.State, images: jax.Array,
                 names: tuple[str, ...]) -> dict[str, jax.Array]:
    return Recorder(names, stop=True).run(nnx.merge(graphdef, state), images)


def activations(model: Model, images, layer_names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The named layers' outputs for ``images`` (N, H, W, C), from one jitted eval-mode pass.

    Args:
      model: any [Model][jaxvision.models.base.Model].
      images: a batch in the model's input format (jaxvision models take [0, 255] pixels).
      layer_names: tapped layer names (``"backbone/conv_pw_1"`` inside a nested model);
        default every tapped output that is an (N, H, W, C) map ([spatial_layers][jaxvision.interpret.spatial_layers]).

    Returns:
      ``{name: array}`` in the order of ``layer_names``.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Conv2D, Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([("stem", Conv2D(3, 4, 3, rngs=nnx.Rngs(0))), Flatten(), Dense(144, 2, rngs=nnx.Rngs(0))])
        >>> {name: a.shape for name, a in activations(model, jnp.ones((2, 8, 8, 3))).items()}
        {'stem': (2, 6, 6, 4)}
    """
    images = as_images(images)
    names = (tuple(layer_names) if layer_names is not None
             else tuple(spatial_layers(model, images.shape)))
    check_layers(model, names, images)
    if not names:
        return {}
    out = _activations(*eval_split(model), images, names)
    return {name: np.asarray(out[name]) for name in names}
