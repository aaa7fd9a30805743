"""The model contract: a forward pass that names its intermediate activations.

A model implements ``forward(x, tap)`` and passes each named layer output through
``tap(name, value)``, continuing with what ``tap`` returns. Plain calls use the identity tap;
[jaxvision.interpret][jaxvision.interpret] passes taps that record activations, or add a zero perturbation
whose gradient is the gradient with respect to that activation (Grad-CAM). No hooks, no
second copy of the model, and everything stays one jit-able function.

Models nest: [Model.call_layer][jaxvision.models.Model.call_layer] runs a sub-model's own ``forward`` with its tap names
prefixed by the attribute's name, so a MobileNet stored as ``backbone`` inside a
``Sequential`` exposes ``"backbone/conv_pw_13_relu"`` to ``intermediates``, Grad-CAM, filter
visualisation and ``summary`` (and ``"backbone"``, its output). Every tap name must be
unique within one forward pass.

Layers nest too: a layer that is not a model (a user's fork of ``SeparableConv2D`` holding a
``pointwise_bn``, a ``ResidualBlock``) has no ``forward``, so
[tapped_forward][jaxvision.models.base.tapped_forward] taps the output (an array) of each of
its sublayers' calls by path (``"sepbn_1/pointwise_bn"``); a sublayer called again is tapped
as ``"path:1"``, ``"path:2"``…
"""

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.layers.base import Layer, sublayers

Tap = Callable[[str, jax.Array], jax.Array]


def identity_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def prefixed(tap: Tap, prefix: str) -> Tap:
    """The tap a sub-model sees: its names become ``prefix/name`` for the outer tap."""
    if tap is identity_tap:
        return tap
    return lambda name, value: tap(f"{prefix}/{name}", value)


def sublayer(model: nnx.Module, path: str) -> nnx.Module | None:
    """The module at ``path`` (``"backbone/conv_pw_13"``: attribute names joined by ``/``),
    or ``None`` when no module is stored there (e.g. a tapped operation such as ``"add"``)."""
    node: object = model
    for key in path.split("/"):
        node = getattr(node, key, None) if not isinstance(node, (list, tuple)) else None
        if node is None:
            return None
    return node if isinstance(node, nnx.Module) else None


@contextlib.contextmanager
def intercepted_calls(root: nnx.Module, paths: Mapping[int, str],
                      around: Callable[[str, Callable[[], object]], object]) -> Iterator[None]:
    """While active, a call of a module of ``root`` whose ``id`` is in ``paths`` runs as
    ``around(path, call)``, ``call()`` running the module (its ``__call__`` is swapped on its
    class for the duration, so use it while tracing, not around compiled code)."""
    classes = {type(node) for _, node in nnx.iter_graph(root) if isinstance(node, nnx.Module)}
    # Wrap each class that defines the __call__ its instances run, once.
    owners = {next((c for c in cls.__mro__ if "__call__" in c.__dict__), None) for cls in classes} - {None}
    saved = {cls: cls.__dict__["__call__"] for cls in owners}
    active: set[int] = set()  # a __call__ calling super().__call__ is one call

    def wrap(call):
        def intercepted(self, *args, **kwargs):
            path = paths.get(id(self))
            if path is None or id(self) in active:
                return call(self, *args, **kwargs)
            active.add(id(self))
            try:
                return around(path, lambda: call(self, *args, **kwargs))
            finally:
                active.discard(id(self))
        return intercepted

    for cls, call in saved.items():
        cls.__call__ = wrap(call)
    try:
        yield
    finally:
        for cls, call in saved.items():
            cls.__call__ = call


def nested_layer_paths(model: nnx.Module) -> dict[int, str]:
    """``id`` → path of every module nested in a layer that is not a [Model][jaxvision.models.base.Model]: the
    outputs no ``forward`` taps."""
    paths: dict[int, str] = {}

    def walk(module: nnx.Module, prefix: str, in_layer: bool) -> None:
        for key, child in sublayers(module):
            if in_layer:
                paths.setdefault(id(child), prefix + key)
            walk(child, f"{prefix}{key}/", not isinstance(child, Model))

    walk(model, "", not isinstance(model, Model))
    return paths


def tapped_forward(model: "Model", x: jax.Array, tap: Tap) -> jax.Array:
    """``model.forward(x, tap)``, with the sublayers of its layers tapped by path too (see
    the module docstring): what [Recorder][jaxvision.models.base.Recorder], Grad-CAM and ``debug.compare`` run."""
    counts: dict[str, int] = {}

    def around(path: str, call: Callable[[], object]) -> object:
        out = call()
        if not isinstance(out, jax.Array):  # a tuple, a dict…: not an activation to tap
            return out
        counts[path] = counts.get(path, -1) + 1
        return tap(path if counts[path] == 0 else f"{path}:{counts[path]}", out)

    with intercepted_calls(model, nested_layer_paths(model), around):
        return model.forward(x, tap)


def keras_name(layer: object) -> str:
    """Keras's default layer-name stem for a layer or layer class, by Keras's own rule
    (``keras.src.utils.naming.to_snake_case``): ``Conv2D`` → ``conv2d``, ``MaxPooling2D`` →
    ``max_pooling2d``, ``Conv2DTranspose`` → ``conv2d_transpose``."""
    name = (layer if isinstance(layer, type) else type(layer)).__name__
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class _Complete(Exception):
    """Raised by a stopping ``Recorder`` once it holds every wanted name."""


class DuplicateTapName(ValueError):
    """A forward pass tapped one name twice; names must be unique to be addressable."""


class UnknownLayerNames(ValueError):
    """A forward pass ended without tapping some wanted names (``missing``)."""

    def __init__(self, missing: list[str]):
        super().__init__(f"unknown layer name(s) {missing}")
        self.missing = missing


class Recorder:
    """The tap that keeps named outputs: every one (``names=None``) or only ``names``.

    With ``stop=True`` the forward pass ends once every wanted name is recorded; under
    ``jax.jit``/``jax.grad`` this only ends the Python trace early, so the layers after it are
    never traced or computed.
    """

    def __init__(self, names: Iterable[str] | None = None, *, stop: bool = False):
        self.wanted = None if names is None else tuple(names)
        self.stop = stop
        self.found: dict[str, jax.Array] = {}
        self.seen: set[str] = set()
        self.output: jax.Array | None = None

    def __call__(self, name: str, value: jax.Array) -> jax.Array:
        if name in self.seen:
            raise DuplicateTapName(f"the forward pass tapped {name!r} twice; give each tapped output its own "
                                   "name (a layer called twice needs two names)")
        self.seen.add(name)
        if self.wanted is None or name in self.wanted:
            self.found[name] = value
            if self.stop and len(self.found) == len(self.wanted or ()):
                raise _Complete
        return value

    def run(self, model: "Model", x: jax.Array) -> dict[str, jax.Array]:
        """Run ``model.forward(x, self)``; the recorded outputs, in forward order (the model's
        output is kept in ``output`` unless the pass stopped early).
        ``UnknownLayerNames`` if a wanted name never came."""
        if self.wanted is not None and not self.wanted:
            return self.found
        try:
            self.output = tapped_forward(model, x, self)
        except _Complete:
            pass
        missing = [name for name in self.wanted or () if name not in self.found]
        if missing:
            raise UnknownLayerNames(missing)
        return self.found


class Model(Layer):
    """Base class: subclasses implement ``forward``.

    ``keras_class`` names the Keras model class this one corresponds to when it is nested in
    another model (the scope of its weights in a Keras ``.weights.h5``): ``"Functional"``.
    """

    keras_class = "Functional"

    def forward(self, x: jax.Array, tap: Tap) -> jax.Array:
        raise NotImplementedError

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward(x, identity_tap)

    def call_layer(self, name: str, x: jax.Array, tap: Tap) -> jax.Array:
        """Run the sublayer stored as ``name`` on ``x`` and tap its output as ``name``; a nested
        [Model][jaxvision.models.Model] runs its own ``forward``, its taps named ``name/...``. Use it in
        ``forward`` for sub-models, so their layers can be reached by path."""
        layer = getattr(self, name)
        out = layer.forward(x, prefixed(tap, name)) if isinstance(layer, Model) else layer(x)
        return tap(name, out)

    def intermediates(self, x: jax.Array, names: Iterable[str] | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The output and the named activations (all of them when ``names`` is None)."""
        recorder = Recorder(names)
        try:
            found = recorder.run(self, x)
        except UnknownLayerNames as error:
            raise self.unknown_layers(error, x.shape) from None
        return recorder.output, found

    def unknown_layers(self, error: UnknownLayerNames, input_shape: tuple[int, ...]) -> ValueError:
        """``error`` with the model's name and the available layer names."""
        return ValueError(f"{type(self).__name__}: {error}; available: {list(self.layer_shapes(input_shape))}")

    def layer_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Every tapped name with its output shape, in forward order (traced, nothing computed)."""
        graphdef, state = nnx.split(self)
        recorder = Recorder()

        def trace(state: nnx.State, x: jax.Array) -> None:
            recorder.run(nnx.merge(graphdef, state), x)

        jax.eval_shape(trace, state, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
        return {name: tuple(value.shape) for name, value in recorder.found.items()}


class Sequential(Model):
    """A stack of layers, each stored as an attribute under its Keras-style name.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Conv2D, Flatten
        >>> model = Sequential([Conv2D(1, 4, 3, rngs=nnx.Rngs(0)), Conv2D(4, 2, 3, rngs=nnx.Rngs(0)), Flatten()])
        >>> model.layer_names
        ('conv2d', 'conv2d_1', 'flatten')
        >>> model(jnp.ones((1, 8, 8, 1))).shape
        (1, 32)
    """

    keras_class = "Sequential"

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
            x = self.call_layer(name, x, tap)
        return x
