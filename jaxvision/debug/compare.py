"""Where do two implementations of one network part ways? A layer-by-layer divergence finder.

``compare`` runs a jaxvision model and a reference on the same inputs and compares every
named intermediate in execution order: the forward activations and, with ``grads=True``, the
gradients of a fixed scalar objective ``sum(output · P)`` (``P`` seeded random weights in [0.5, 1.5])
with respect to the model's input, to every layer's output and to every weight. A tensor
agrees when every element satisfies ``|ours − ref| ≤ rtol · (|ref| + scale)``: NumPy's
``allclose`` with ``atol = rtol × scale``, where ``scale`` is that tensor's own largest
magnitude, or that of the tensor computed just before it when larger (so a layer that
narrows the range, ReLU6 clipping to 6, keeps the rounding error of what it was computed
from; a layer that leaves the range unchanged, a padding after that ReLU6, is judged on the
scale its input was judged on), and ``rtol`` the tolerance of the model's compute dtype.
Each tensor is judged on its own scale, never the model input's: behind a ``Rescaling`` of 0–255 pixels, a fault of 1e-4
of a layer's own magnitude is a divergence, while the rounding that accumulates over dozens
of float32 layers (≈1e-6 per layer) passes. Each row shows the largest absolute error and
the largest ratio to that bound's scale; the first row over ``rtol`` is the divergence, and
the report stops there.

Nothing is left out silently: every tensor or gradient not compared is in the report's
``skipped``, with the reason (only one side computes it, ``layers=`` left it out, the report
stopped at the first divergence, a BatchNorm statistic has no gradient, no reference
variable pairs with a weight…).

The reference is a Keras 3 model ([keras_intermediates][jaxvision.debug.keras_intermediates] reads every layer's output,
nested models included as ``outer/inner``), or any callable ``x -> {name: array}`` in
execution order, e.g. another jaxvision model ([jaxvision_intermediates][jaxvision.debug.jaxvision_intermediates]) — which is
how [drift][jaxvision.debug.drift] maps float32 against ``mixed_bfloat16`` and one device against a mesh.
Keras runs on its JAX backend: [keras_on_jax][jaxvision.debug.compare.keras_on_jax] sets it up when Keras is not imported
yet, and says how to fix it when Keras was imported with another backend.
"""

import dataclasses
import functools
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.base import Model, Recorder, tapped_forward
from jaxvision.weights.model_layers import WEIGHT_TYPES, keras_layers, layer_variables

TOLERANCES = {"float32": 1e-5, "bfloat16": 1e-2, "float16": 1e-3, "float64": 1e-12}
Intermediates = Callable[[np.ndarray], Mapping[str, np.ndarray]]


@dataclasses.dataclass
class Row:
    """One compared tensor: its name, shape, largest absolute error, that error relative to
    the reference's largest magnitude, and whether it is within tolerance."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    ok: bool


@dataclasses.dataclass
class Report:
    """The rows in execution order (forward, then gradients), up to and including the first
    divergence; ``skipped`` maps every tensor or gradient not compared to the reason; ``notes``
    explain a divergence (a gradient at an activation's kink)."""

    rows: list[Row]
    tolerance: float
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def first_divergence(self) -> Row | None:
        return next((row for row in self.rows if not row.ok), None)

    @property
    def identical(self) -> bool:
        return self.first_divergence is None

    @property
    def unmatched(self) -> list[str]:
        """The names only one side has (reference names prefixed ``(reference)``)."""
        return [name for name, reason in self.skipped.items() if reason in (ONLY_OURS, ONLY_THEIRS)]

    def __str__(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"{'layer':<{width}}  {'shape':<22} {'max abs':>10} {'max rel':>10}",
                 *(f"{r.name:<{width}}  {str(r.shape):<22} {r.max_abs:>10.3g} {r.max_rel:>10.3g}"
                   f"{'' if r.ok else '  <-- first divergence'}" for r in self.rows)]
        if self.skipped:
            lines.append(f"not compared ({len(self.skipped)}):")
            by_reason: dict[str, list[str]] = {}
            for name, reason in self.skipped.items():
                by_reason.setdefault(reason, []).append(name)
            for reason, names in by_reason.items():
                shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
                lines.append(f"  {reason}: {shown}")
        lines += [f"note on {name}: {note}" for name, note in self.notes.items()]
        bad = self.first_divergence  # the verdict comes last
        lines.append(f"identical to {self.tolerance:g} at every one of {len(self.rows)} compared tensors"
                     if bad is None else
                     f"first divergence: {bad.name} (max abs {bad.max_abs:.3g}, rel {bad.max_rel:.3g} > {self.tolerance:g})")
        return "\n".join(lines)


ONLY_OURS = "only jaxvision has it"
ONLY_THEIRS = "only the reference has it"
NOT_ASKED = "not in layers="
AFTER_DIVERGENCE = "after the first divergence (stop_at_first=True)"


def keras_on_jax():
    """Keras 3 on its JAX backend: imported with ``KERAS_BACKEND=jax`` when not imported yet,
    else checked (the gradients run Keras's graph under ``jax.grad``)."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "jax"
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"jaxvision.debug needs Keras on its JAX backend, but Keras was imported with the "
                           f"{keras.backend.backend()!r} backend; set KERAS_BACKEND=jax before importing keras "
                           "(or import jaxvision.debug first)")
    return keras


def _magnitude(value: np.ndarray) -> float:
    value = np.asarray(value)
    finite = np.abs(value[np.isfinite(value)]) if value.size else value
    return float(np.max(finite)) if np.size(finite) else 0.0


def _row(name: str, ours: np.ndarray, theirs: np.ndarray, tolerance: float, input_scale: float = 0.0) -> Row:
    """``input_scale``: the magnitude of what the tensor was computed from, when larger than its own."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return Row(name, tuple(ours.shape), float("inf"), float("inf"), False)
    if not ours.size:
        return Row(name, tuple(ours.shape), 0.0, 0.0, True)
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))):
        same = bool(np.array_equal(ours, theirs, equal_nan=True))
        return Row(name, tuple(ours.shape), 0.0 if same else float("inf"), 0.0 if same else float("inf"), same)
    difference = np.abs(ours - theirs)
    bound = np.abs(theirs) + max(float(np.max(np.abs(theirs))), input_scale)
    ratio = np.divide(difference, bound, out=np.where(difference > 0, np.inf, 0.0), where=bound > 0)
    rel = float(np.max(ratio))
    return Row(name, tuple(ours.shape), float(np.max(difference)), rel, rel <= tolerance)


def _projection(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Seeded weights of one sign: the per-example terms of a weight's gradient then add up
    rather than cancel (a cancelling sum would be judged on a result smaller than the terms
    whose rounding it carries)."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype(np.float32)


def _view(model: Model, training: bool) -> Model:
    """A copy of ``model``'s structure sharing its arrays, in train or eval mode (the model
    itself keeps its mode)."""
    view = nnx.merge(*nnx.split(model))
    view.train() if training else view.eval()
    return view


def jaxvision_intermediates(model: Model, *, training: bool = False,
                            mesh: jax.sharding.Mesh | None = None) -> Intermediates:
    """``x -> {tap name: activation}`` (nested models as ``outer/inner``, in execution order)
    from one jitted pass of ``model`` in eval mode (``training=True``: train mode, BatchNorm on
    batch statistics). With ``mesh``, the batch is split over its ``"data"`` axis and the
    weights replicated, as ``fit``/``predict`` place them. The model itself is left untouched."""
    graphdef, state = nnx.split(_view(model, training))
    place = jnp.asarray
    if mesh is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
        place = lambda x: jax.device_put(jnp.asarray(x), NamedSharding(mesh, PartitionSpec("data")))  # noqa: E731
    def call(x):
        x = place(x)
        values = _recorded(graphdef, state, x)
        names = _TAP_NAMES[graphdef, x.shape, str(x.dtype)]
        return dict(zip(names, (np.asarray(jax.device_get(v)) for v in values), strict=True))

    return call


# Tap names of each traced (graphdef, input shape, dtype), noted while tracing: a model rebuilt
# with the same structure (a faulty twin's weights, a fresh load) reuses the compiled pass.
_TAP_NAMES: dict[tuple, list[str]] = {}


@functools.partial(jax.jit, static_argnames="graphdef")
def _recorded(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array) -> list[jax.Array]:
    recorder = Recorder()  # a list is returned, not a dict: jit would sort a dict's keys
    recorder.run(nnx.merge(graphdef, state), x)
    _TAP_NAMES[graphdef, x.shape, str(x.dtype)] = [*recorder.found, "output"]
    return [*recorder.found.values(), recorder.output]


# Compiled Keras passes per Keras model ({("forward" | "gradients", training): ...}): comparing
# several twins against one reference compiles it once.
_KERAS_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keras_intermediates(keras_model, *, training: bool = False) -> Intermediates:
    """``x -> {layer name: output}`` of a Keras 3 functional/sequential model, every layer in
    its order; a nested model's layers are named ``<nested model name>/<layer>``."""
    keras = keras_on_jax()

    outputs, names = [], []

    def collect(model, prefix):
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
                collect(layer, f"{prefix}{layer.name}/")
            names.append(prefix + layer.name)
            outputs.append(layer.output)

    collect(keras_model, "")
    try:
        inputs = keras_model.inputs
        probe = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)
    except ValueError:  # a nested model's inner tensors live in its own graph
        probe = None

    if probe is not None:
        # One jitted run of the whole graph (Keras on JAX): eager Keras would compile every
        # operation of every layer separately, hundreds of compilations for a small convnet.
        cached = _KERAS_COMPILED.setdefault(keras_model, {})
        if ("forward", training) not in cached:
            graph = keras.Model(probe.inputs, [*probe.outputs, *keras_model.outputs])
            cached["forward", training] = graph, jax.jit(
                lambda tv, ntv, x: graph.stateless_call(tv, ntv, x, training=training)[0])
        graph, forward = cached["forward", training]

    def run(x):
        if probe is not None:
            variables = ([v.value for v in graph.trainable_variables],  # now: the weights may have been loaded since
                         [v.value for v in graph.non_trainable_variables])
            values = [np.asarray(v) for v in forward(*variables, x)]
            found = dict(zip(names, values))
            found["output"] = values[-1]
            return found
        # A model nesting models (the book's end-to-end model after listing 8.29): its layers form a chain, each fed
        # the previous one's output; a nested model is run once, through its own intermediates.
        found, value = {}, x
        for layer in keras_model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.Model):
                inner = keras_intermediates(layer, training=training)(value)
                found.update({f"{layer.name}/{k}": v for k, v in inner.items() if k != "output"})
                value = inner["output"]
            else:
                value = np.asarray(layer(value, training=training))
            found[layer.name] = value
        found["output"] = value
        return found

    return run


def _match(ours: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray], rename: Mapping[str, str]
           ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Pairs (our name, their name) in our execution order: by name after ``rename`` of our
    prefixes, else by the last path component when that is unique on their side; and the
    names either side has alone, with the reason."""
    by_leaf: dict[str, list[str]] = {}
    for name in theirs:
        by_leaf.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    pairs, skipped = [], {}
    for name in ours:
        target = name
        for old, new in rename.items():
            if target == old or target.startswith(old + "/"):
                target = new + target[len(old):]
        leaf = by_leaf.get(target.rsplit("/", 1)[-1], [])
        if target in theirs:
            pairs.append((name, target))
        elif len(leaf) == 1:
            pairs.append((name, leaf[0]))
        else:
            skipped[name] = ONLY_OURS
    paired = {t for _, t in pairs}
    skipped.update({f"(reference) {n}": ONLY_THEIRS for n in theirs if n not in paired})
    return pairs, skipped


def _compute_dtype(model: Model) -> str:
    """The coarsest compute dtype among the model's layers (a ``mixed_bfloat16`` model: bfloat16)."""
    dtypes = {str(m.dtype) for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Module) and hasattr(m, "dtype")}
    return max(dtypes or {"float32"}, key=lambda d: TOLERANCES.get(d, 1e-5))


def compare(model: Model, reference, inputs, *, layers: Iterable[str] | None = None, grads: bool = False,
            training: bool = False, dtype: str | None = None, tolerances: Mapping[str, float] | None = None,
            rename: Mapping[str, str] | None = None, stop_at_first: bool = True) -> Report:
    """Compare ``model`` with ``reference`` layer by layer on ``inputs``.

    Args:
      model: a jaxvision [Model][jaxvision.models.base.Model].
      reference: a Keras 3 model, or a callable ``x -> {name: array}`` in execution order.
      inputs: one batch, as both models take it.
      layers: compare only these names (default: every name both sides have; the others are
        listed in ``skipped``).
      grads: also compare the gradients of ``sum(output · P)`` with respect to every layer's
        output (so each layer's input), every weight and the model's input (reference: a Keras
        model, run statelessly through its graph under ``jax.grad``). Weights pair with the
        reference's variables by path, else by position within the top-level layer of the same
        name (a custom layer's nested variables); a weight left unpaired is in ``skipped``.
      training: run both in training mode (BatchNorm on batch statistics, as Keras's
        ``training=True``); default inference.
      dtype: the compute dtype deciding the tolerance (default: the coarsest compute dtype of
        the model's layers, so a ``mixed_bfloat16`` model gets the bfloat16 tolerance).
      tolerances: overrides of ``TOLERANCES`` (float32 1e-5, bfloat16 1e-2), relative to each
        tensor's own magnitude (see the module docstring).
      rename: our name prefix → theirs (``{"backbone": "mobilenet_0.75_224"}``).
      stop_at_first: end the report at the first divergence.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Dense
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Dense(3, 4, rngs=nnx.Rngs(0)), Dense(4, 2, rngs=nnx.Rngs(1))])
        >>> twin = Sequential([Dense(3, 4, rngs=nnx.Rngs(0)), Dense(4, 2, rngs=nnx.Rngs(2))])
        >>> report = compare(model, jaxvision_intermediates(twin), np.ones((2, 3), np.float32))
        >>> report.first_divergence.name, report.skipped
        ('dense_1', {'output': 'after the first divergence (stop_at_first=True)'})
    """
    tolerance_of = {**TOLERANCES, **(tolerances or {})}
    dtype = _compute_dtype(model) if dtype is None else dtype
    tolerance = tolerance_of.get(np.dtype(dtype).name if dtype != "bfloat16" else "bfloat16", 1e-5)
    is_keras = hasattr(reference, "layers") and hasattr(reference, "stateless_call")
    theirs_fn = keras_intermediates(reference, training=training) if is_keras else reference
    x = np.asarray(inputs)
    ours, theirs = jaxvision_intermediates(model, training=training)(x), dict(theirs_fn(x))
    pairs, skipped = _match(ours, theirs, rename or {})
    if layers is not None:
        wanted = set(layers)
        skipped.update({name: NOT_ASKED for name, _ in pairs if name not in wanted})
        pairs = [p for p in pairs if p[0] in wanted]
    rows, notes = [], {}
    previous, judged = _magnitude(x), _magnitude(x)  # the last tensor's magnitude, the scale it was judged on
    for i, (name, their_name) in enumerate(pairs):
        magnitude = _magnitude(theirs[their_name])
        # A layer that leaves the range as it was (padding, reshaping, inference dropout) carries
        # its input's error unchanged: it is judged on the scale its input was judged on.
        scale = judged if magnitude == previous else previous
        rows.append(_row(name, ours[name], theirs[their_name], tolerance, scale))
        previous, judged = magnitude, max(magnitude, scale)
        if stop_at_first and not rows[-1].ok:
            skipped.update({n: AFTER_DIVERGENCE for n, _ in pairs[i + 1:]})
            if grads:
                skipped["gradients"] = AFTER_DIVERGENCE
            return Report(rows, tolerance, skipped)
    if grads:
        if not is_keras:
            raise ValueError("compare(grads=True) needs a Keras model as the reference (it differentiates both)")
        grad_rows, grad_skipped = _gradient_rows(model, reference, x, training, tolerance, pairs, rename)
        skipped.update(grad_skipped)
        for i, row in enumerate(grad_rows):
            rows.append(row)
            if stop_at_first and not row.ok:
                skipped.update({r.name: AFTER_DIVERGENCE for r in grad_rows[i + 1:]})
                break
        bad = next((row for row in grad_rows if not row.ok), None)
        layer = bad.name.removeprefix("d/d ").removesuffix(" (output)") if bad is not None else None
        if layer in dict(pairs) and (note := _kink_note(layer, ours[layer], theirs[dict(pairs)[layer]])):
            notes[bad.name] = note
    return Report(rows, tolerance, skipped, notes)


# Where the common activations change slope: ReLU and LeakyReLU at 0, ReLU6 at 0 and 6, hard
# sigmoid and hard swish at -3 and 3.
KINKS = (0.0, 6.0, -3.0, 3.0)


def _kink_note(name: str, ours: np.ndarray, theirs: np.ndarray) -> str | None:
    """Why the gradient with respect to ``name``'s output may differ although both forward
    passes agree: elements that float rounding puts on opposite sides of an activation's kink
    get that activation's derivative from either side (1 on one, 0 on the other), and the
    difference travels back through every layer before it."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return None
    split = {k: int(np.sum((ours > k) != (theirs > k))) for k in KINKS}
    split = {k: n for k, n in split.items() if n}
    if not split:
        return None
    where = ", ".join(f"{n} at {k:g}" for k, n in split.items())
    return (f"{sum(split.values())} of {ours.size} elements of {name}'s output lie on opposite sides of an "
            f"activation kink ({where}) on the two sides, within the forward difference "
            f"(max abs {np.max(np.abs(ours - theirs)):.3g}): if the next layer changes slope there, its derivative "
            "differs there legitimately, and so does every gradient from here back")


def _weights(model: Model) -> dict[str, tuple[int, ...]]:
    """Our weights' paths and shapes in Keras's order (layer by layer, a layer before its sublayers)."""
    try:
        return {f"{name}/{var}": tuple(v.shape) for name, layer in keras_layers(model).items()
                for var, v in layer_variables(layer)}
    except ValueError:  # weights outside layer attributes: no Keras order, pair by path only
        return {"/".join(map(str, path)): tuple(node.shape) for path, node in nnx.iter_graph(model)
                if isinstance(node, WEIGHT_TYPES)}


def _pair_weights(ours: Mapping[str, tuple[int, ...]], theirs: list, rename: Mapping[str, str]
                  ) -> tuple[dict[str, int], list[int]]:
    """Our weight path → index of the reference variable it pairs with: by path (ours ends
    with theirs or the other way round, or the same layer/variable), then, for what is left,
    by position among the variables of the top-level layer of the same name (a custom
    layer's nested variables, which Keras names by its sublayers' own names) when their
    shapes agree. Also the indices of reference variables left unpaired."""
    their_paths = [v.path for v in theirs]
    pairs: dict[str, int] = {}
    for key in ours:
        found = next((i for i, name in enumerate(their_paths) if i not in pairs.values() and (
            key == name or key.endswith("/" + name) or name.endswith("/" + key))), None)
        if found is None:
            found = next((i for i, name in enumerate(their_paths) if i not in pairs.values()
                          and key.split("/")[-2:] == name.split("/")[-2:]), None)
        if found is not None:
            pairs[key] = found
    taken = set(pairs.values())

    def top(path: str, ours_side: bool) -> str:
        for old, new in rename.items() if ours_side else ():
            if path == old or path.startswith(old + "/"):
                path = new + path[len(old):]
        return path.split("/", 1)[0]

    groups: dict[str, tuple[list[str], list[int]]] = {}
    for key in ours:
        if key not in pairs:
            groups.setdefault(top(key, True), ([], []))[0].append(key)
    for i, name in enumerate(their_paths):
        if i not in taken and top(name, False) in groups:
            groups[top(name, False)][1].append(i)
    for keys, indices in groups.values():
        if [ours[k] for k in keys] == [tuple(theirs[i].shape) for i in indices]:
            pairs.update(zip(keys, indices))
    taken = set(pairs.values())
    return pairs, [i for i in range(len(theirs)) if i not in taken]


def _gradient_rows(model: Model, keras_model, x: np.ndarray, training: bool, tolerance: float,
                   pairs: list[tuple[str, str]], rename: Mapping[str, str] | None = None
                   ) -> tuple[list[Row], dict[str, str]]:
    """Gradients of ``sum(output · P)``, from the output back: for each layer (of the pairs
    that are the reference's own top-level layers) the gradient with respect to its output —
    which is the next layer's input — then its weights; last the model's input. Also what
    was not compared, with the reason."""
    graphdef, params, rest = nnx.split(_view(model, training), nnx.Param, ...)
    x = jnp.asarray(x)
    graph = getattr(keras_model, "_functional", keras_model)  # a Sequential runs a functional graph
    top_level = {layer.name for layer in graph.layers}
    tapped = [(ours, theirs) for ours, theirs in pairs if theirs in top_level and ours != "output"]
    skipped = {f"d/d {ours} (output)": "no perturbation point in the reference (not one of its top-level layers)"
               for ours, theirs in pairs if (ours, theirs) not in tapped and ours != "output"}
    out, taps = jax.eval_shape(lambda p: nnx.merge(graphdef, p, rest, copy=True).intermediates(x), params)
    projection = jnp.asarray(_projection(out.shape))
    deltas = {ours: jnp.zeros(taps[ours].shape, taps[ours].dtype) for ours, _ in tapped}

    # Jitted, and kept per structure: run eagerly, every operation of both backward passes
    # would compile on its own; a faulty twin of the same structure reuses the compiled passes.
    grad_params, grad_deltas, grad_x = _our_gradients(graphdef, params, rest, deltas, x, projection)
    variables, others, their_gradients = _keras_gradients(keras_model, training)
    their_deltas = {theirs: deltas[ours] for ours, theirs in tapped}
    their_grads, their_grad_deltas, their_x = their_gradients(
        [v.value for v in variables], [v.value for v in others], their_deltas, x, projection)
    ours_by_name = {"/".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(grad_params)}
    weights = _weights(model)
    paired, left = _pair_weights(weights, variables, rename or {})
    tapped_names = {ours for ours, _ in tapped}

    def owner(key: str) -> str:
        """The tapped layer a weight belongs to: its layer, or the layer that holds that layer."""
        parts = key.split("/")[:-1]
        return next(("/".join(parts[:n]) for n in range(len(parts), 0, -1) if "/".join(parts[:n]) in tapped_names),
                    "/".join(parts))

    weight_rows: dict[str, list[Row]] = {}
    for key in weights:
        if key not in ours_by_name:
            skipped[f"d/d {key}"] = "a BatchNorm statistic, not a trained weight: no gradient"
        elif key not in paired:
            skipped[f"d/d {key}"] = "no reference variable pairs with it (by path or position in its layer)"
        else:
            row = _row(f"d/d {key}", ours_by_name[key], their_grads[paired[key]], tolerance)
            weight_rows.setdefault(owner(key), []).append(row)
    skipped.update({f"d/d (reference) {variables[i].path}": "no jaxvision weight pairs with it" for i in left})
    # Backward order: a fault corrupts the gradients of every layer before it, so the first
    # wrong row seen from the output names the layer where the backward pass goes wrong.
    rows = []
    for ours, theirs in reversed(tapped):
        rows.append(_row(f"d/d {ours} (output)", grad_deltas[ours], their_grad_deltas[theirs], tolerance))
        rows += weight_rows.pop(ours, [])
    rows += [row for group in reversed(list(weight_rows.values())) for row in group]  # layers no tap names
    return [*rows, _row("d/d input", grad_x, their_x, tolerance)], skipped


@functools.partial(jax.jit, static_argnames="graphdef")
def _our_gradients(graphdef: nnx.GraphDef, params: nnx.State, rest: nnx.State, deltas: dict, x: jax.Array,
                   projection: jax.Array):
    """Gradients of ``sum(output · projection)`` with respect to the parameters, a zero
    perturbation added at each tap named in ``deltas`` (so its output), and the input."""
    def objective(p, d, v):
        def tap(name, value):
            return value + d[name] if name in d else value

        return jnp.sum(tapped_forward(nnx.merge(graphdef, p, rest, copy=True), v, tap) * projection)

    return jax.grad(objective, argnums=(0, 1, 2))(params, deltas, x)


def _keras_gradients(keras_model, training: bool):
    """The Keras model's weights (trainable or not, a frozen layer's kernels too, in Keras's
    layer-by-layer order), its other state (seeds), and a jitted function of their values,
    perturbations by layer name, the input and the projection giving the gradients with
    respect to the weights, the perturbations and the input. Kept per model."""
    cached = _KERAS_COMPILED.setdefault(keras_model, {})
    if ("gradients", training) not in cached:
        from keras.src.backend import StatelessScope
        from keras.src.models.functional import operation_fn

        graph = getattr(keras_model, "_functional", keras_model)  # a Sequential runs a functional graph
        variables = list(keras_model.weights)
        others = [v for v in keras_model.non_trainable_variables if all(v is not w for w in variables)]

        def objective(values, other_values, d, v, projection):
            def perturbed(op):
                call = operation_fn(op, training=training)
                return (lambda *args, **kwargs: call(*args, **kwargs) + d[op.name]) if op.name in d else call

            with StatelessScope(state_mapping=[*zip(variables, values), *zip(others, other_values)]):
                out = graph._run_through_graph(graph._standardize_inputs(v), operation_fn=perturbed)
            return jnp.sum(jnp.asarray(out[0] if isinstance(out, (list, tuple)) else out) * projection)

        cached["gradients", training] = variables, others, jax.jit(jax.grad(objective, argnums=(0, 2, 3)))
    return cached["gradients", training]


def drift(model: Model, inputs, *, policy: str | None = None, mesh: jax.sharding.Mesh | None = None,
          training: bool = False, tolerances: Mapping[str, float] | None = None) -> Report:
    """Where ``model``'s numbers move when it changes precision or topology, before spending
    accelerator time: float32 (the reference) against the same weights under ``policy``
    (``"mixed_bfloat16"``; bfloat16 tolerance), or one device against ``mesh`` (float32
    tolerance). Exactly one of ``policy`` and ``mesh``.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Conv2D
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), Conv2D(4, 2, 3, rngs=nnx.Rngs(1))])
        >>> drift(model, np.ones((2, 8, 8, 3), np.float32), policy="mixed_bfloat16").identical
        True
    """
    from jaxvision.layers.precision import get_policy, set_policy

    if (policy is None) == (mesh is None):
        raise ValueError("drift: pass exactly one of policy= and mesh=")
    if policy is not None:
        other = nnx.merge(*nnx.split(model))
        set_policy(other, policy)
        reference, dtype = jaxvision_intermediates(other, training=training), get_policy(policy).compute_dtype.name
        report = compare(model, reference, inputs, training=training, dtype=dtype, tolerances=tolerances,
                         stop_at_first=False)
    else:
        reference = jaxvision_intermediates(model, training=training, mesh=mesh)
        report = compare(model, reference, inputs, training=training, dtype="float32", tolerances=tolerances,
                         stop_at_first=False)
    return report
