"""The model contract: a forward pass that names its intermediate activations.

A model implements ``forward(x, tap)`` and passes each named layer output through
``tap(name, value)``, continuing with what ``tap`` returns. Plain calls use the identity tap;
:mod:`jaxvision.interpret` passes taps that record activations, or add a zero perturbation
whose gradient is the gradient with respect to that activation (Grad-CAM). No hooks, no
second copy of the model, and everything stays one jit-able function.
"""

import re
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers.base import Layer

Tap = Callable[[str, jax.Array], jax.Array]


def identity_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def keras_name(layer: object) -> str:
    """Keras's default layer-name stem: ``Conv2D`` → ``conv2d``, ``MaxPooling2D`` → ``max_pooling2d``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])", "_", type(layer).__name__).lower()


class Model(Layer):
    """Base class: subclasses implement :meth:`forward`."""

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        raise NotImplementedError

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward(x, identity_tap)

    def intermediates(self, x: jax.Array, names: Iterable[str] | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The output and the named activations (all of them when ``names`` is None)."""
        wanted = None if names is None else set(names)
        found: dict[str, jax.Array] = {}

        def record(name: str, value: jax.Array) -> jax.Array:
            if wanted is None or name in wanted:
                found[name] = value
            return value

        out = self.forward(x, record)
        if wanted is not None and wanted - set(found):
            missing = sorted(wanted - set(found))
            raise ValueError(f"{type(self).__name__}: unknown layer name(s) {missing}; "
                             f"available: {list(self.layer_shapes(x.shape))}")
        return out, found

    def layer_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Every tapped name with its output shape, in forward order (traced, nothing computed)."""
        shapes: dict[str, tuple[int, ...]] = {}
        graphdef, state = nnx.split(self)

        def record(name: str, value: jax.Array) -> jax.Array:
            shapes[name] = tuple(value.shape)
            return value

        def run(state, x):
            return nnx.merge(graphdef, state).forward(x, record)

        jax.eval_shape(run, state, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
        return shapes


class Sequential(Model):
    """A stack of layers, each stored as an attribute under its Keras-style name.

    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> from jaxvision.layers import Conv2D, Flatten
    >>> model = Sequential([Conv2D(1, 4, 3, rngs=nnx.Rngs(0)), Conv2D(4, 2, 3, rngs=nnx.Rngs(0)), Flatten()])
    >>> model.layer_names
    ('conv2d', 'conv2d_1', 'flatten')
    >>> model(jnp.ones((1, 8, 8, 1))).shape
    (1, 32)
    """

    def __init__(self, layers: Iterable[nnx.Module | tuple[str, nnx.Module]]):
        names: list[str] = []
        for item in layers:
            name, layer = item if isinstance(item, tuple) else (getattr(item, "name", None), item)
            if name is None:
                stem = keras_name(layer)
                count = sum(n == stem or n.startswith(stem + "_") and n[len(stem) + 1:].isdigit() for n in names)
                name = stem if count == 0 else f"{stem}_{count}"
            if name in names:
                raise ValueError(f"Sequential: duplicate layer name {name!r}")
            setattr(self, name, layer)
            names.append(name)
        self.layer_names = tuple(names)

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        for name in self.layer_names:
            x = tap(name, getattr(self, name)(x))
        return x
