"""The jitted train, eval and predict steps.

A model is split once into ``params`` (its trainable ``nnx.Param``), ``rngs`` (its RNG
streams) and ``state`` (everything else: ``nnx.BatchStat``, frozen parameters), and into
two graph definitions: one in train mode (``model.train()``: Dropout active, BatchNorm on
batch statistics unless frozen) and one in eval mode. Each step is a pure function of
arrays, compiled once by ``jax.jit``; the training carry is donated so the update happens
in place on the accelerator.

Randomness is explicit: step ``s`` reseeds every RNG stream of the model from
``fold_in(key(seed), s)`` (one sub-key per stream tag), so a run depends only on
(seed, step) and a resumed run is bit-identical to an uninterrupted one.

The loss and metric sums stay on the device for a whole epoch. A non-finite loss is
recorded (first bad step and its value) and freezes the carry at the last good step, so
the loop can check for it only when it syncs anyway and still hand back good weights.

Every step is SPMD over the ``Placement``'s mesh: the carry
comes out replicated, batches are split over the ``"data"`` axis. Evaluation batches are
padded to a fixed size and carry a mask, so every example counts exactly once. An optional
``augment(x, y, key) -> (x, y)`` (e.g.
[jaxvision.layers.AugmentBatch.apply_pair][jaxvision.layers.AugmentBatch.apply_pair])
runs inside the train step, on the devices, with a key fixed by (seed, step).

The loss minimised is Keras's ``compute_loss``: the loss function's value (a per-sample or
per-pixel result is averaged, Keras's "sum_over_batch_size") plus the model's auxiliary
losses (weight and activity regularizers, ``add_loss``; ``jaxvision.layers.regularizers``),
in training and evaluation alike. An ``objective(model, x, y, key) -> (loss, y_pred)``
replaces the loss function in training only (Keras's overridden ``train_step`` with the
default ``test_step``): it sees the train-mode model, so it can penalise gradients,
activations or weights; the auxiliary losses are added to what it returns, and metrics are
computed on its ``y_pred``.
"""

import collections
import functools
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision.layers.base import frozen_paths, trainable_filter
from jaxvision.layers.regularizers import collect_losses, weight_penalty
from jaxvision.train.metrics import Metric
from jaxvision.train.sharding import Placement


def filters(model: nnx.Module) -> tuple:
    """``nnx.split`` filters → params (trainable only), rngs, state."""
    return trainable_filter(model), nnx.RngState, ...


class Carry(NamedTuple):
    """Everything a train step updates; donated to the next step."""

    params: nnx.State
    state: nnx.State
    opt_state: Any
    sums: tuple  # (loss total, loss count) and one state per metric
    step: jax.Array  # global step, int32
    bad_step: jax.Array  # first global step with a non-finite loss, -1 while none
    bad_loss: jax.Array


# graphdef -> (frozen paths, train graphdef, eval graphdef): all three follow from the graph
# definition alone (``trainable`` and the mode switches are static attributes), and deriving
# them walks the graph five times, seconds for a DenseNet in Python: once per graph, not per
# ``predict``/``evaluate``/``fit`` call. The oldest of the last few graphs is dropped first.
_DERIVED: collections.OrderedDict = collections.OrderedDict()
_DERIVED_SIZE = 8


def _derived(graphdef: nnx.GraphDef, everything: nnx.State) -> tuple:
    try:
        found = _DERIVED.get(graphdef)  # one hash: each walks the whole graph
        cacheable = True
    except TypeError:  # an unhashable static attribute (a user layer's list): derive every time
        found, cacheable = None, False
    if found is not None:
        return found
    twin = nnx.merge(graphdef, everything)
    frozen = frozen_paths(twin)
    twin.train()
    train_graphdef = nnx.split(twin, *filters(twin))[0]
    twin.eval()
    eval_graphdef = nnx.split(twin, *filters(twin))[0]
    if cacheable:
        _DERIVED[graphdef] = frozen, train_graphdef, eval_graphdef
        if len(_DERIVED) > _DERIVED_SIZE:
            _DERIVED.popitem(last=False)
    return frozen, train_graphdef, eval_graphdef


def split(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.GraphDef, nnx.State, nnx.State, nnx.State]:
    """``(train_graphdef, eval_graphdef, params, rngs, state)``, leaving ``model`` unchanged."""
    graphdef, everything = nnx.split(model)
    frozen, train_graphdef, eval_graphdef = _derived(graphdef, everything)
    params, rngs, state = nnx.split_state(everything, trainable_filter(model, frozen=frozen), nnx.RngState, ...)
    return train_graphdef, eval_graphdef, params, rngs, state


def stream_tags(model: nnx.Module) -> tuple[str, ...]:
    """Tags of the RNG streams stored in the model (``"dropout"``, ``"augment"``, or
    ``"default"`` when a layer was given ``nnx.Rngs(0)``)."""
    tags = {node.tag for _, node in nnx.iter_graph(model) if isinstance(node, nnx.RngStream)}
    return tuple(sorted(tags))


Objective = Callable[[nnx.Module, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def with_auxiliary_losses(value: jax.Array, model: nnx.Module, added: list[jax.Array]) -> jax.Array:
    """``value`` plus the model's ``add_loss`` values and weight penalties (unchanged when
    there are none, so the default path stays Keras's exact arithmetic)."""
    penalty = weight_penalty(model, trainable_filter(model))
    terms = [*added, *([] if penalty is None else [penalty])]
    return value + sum(terms[1:], terms[0]) if terms else value


def loss_objective(loss: Callable) -> Objective:
    """The default objective: ``loss`` averaged to a scalar (Keras's "sum_over_batch_size")."""
    def objective(model: nnx.Module, x: jax.Array, y: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        y_pred = model(x)
        return jnp.mean(loss(y, y_pred)), y_pred

    return objective


def init_sums(metrics: Sequence[Metric]) -> tuple:
    return ((jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)), *(m.init() for m in metrics))


def update_sums(sums: tuple, metrics: Sequence[Metric], loss: jax.Array, y: jax.Array, y_pred: jax.Array) -> tuple:
    # Keras weights each batch's mean loss by its batch size.
    (total, count), *states = sums
    n = jnp.float32(y_pred.shape[0])
    return ((total + loss * n, count + n),
            *(m.update(s, y, y_pred) for m, s in zip(metrics, states, strict=True)))


def masked_sums(sums: tuple, metrics: Sequence[Metric], loss: Callable, y: jax.Array, y_pred: jax.Array,
                mask: jax.Array, penalty: jax.Array | float = 0.0) -> tuple:
    """``update_sums`` counting only the examples where ``mask`` is true; ``penalty`` (the
    auxiliary losses, one value for the batch) is added to every example's loss."""
    (total, count), *states = sums
    weight = mask.astype(jnp.float32)
    per_example = jax.vmap(lambda t, p: jnp.mean(loss(t[None], p[None])))(y, y_pred) + penalty
    return ((total + jnp.sum(per_example * weight), count + jnp.sum(weight)),
            *(m.update(s, y, y_pred, sample_weight=weight) for m, s in zip(metrics, states, strict=True)))


def results(sums: tuple, metrics: Sequence[Metric]) -> dict[str, jax.Array]:
    (total, count), *states = sums
    out = {"loss": total / jnp.maximum(count, 1.0)}
    out.update({m.name: m.result(s) for m, s in zip(metrics, states, strict=True)})
    return out


AUGMENT_STREAM = zlib.crc32(b"fit.augment") & 0x7FFFFFFF
OBJECTIVE_STREAM = zlib.crc32(b"fit.objective") & 0x7FFFFFFF


def reseed_streams(model: nnx.Module, tags: tuple[str, ...], key: jax.Array) -> None:
    """Reseed the model's RNG streams from one step key, as the train step does."""
    # crc32 of the tag, not its position, so adding a stream does not shift the others.
    nnx.reseed(model, **{tag: jax.random.fold_in(key, zlib.crc32(tag.encode()) & 0x7FFFFFFF) for tag in tags})


class Steps:
    """The compiled steps for one (model structure, loss, metrics, optimizer, mesh, augment,
    objective)."""

    def __init__(self, train_graphdef: nnx.GraphDef, eval_graphdef: nnx.GraphDef, loss: Callable,
                 metrics: tuple[Metric, ...], optimizer: optax.GradientTransformation | None,
                 tags: tuple[str, ...], placement: Placement, augment: Callable | None = None,
                 objective: Objective | None = None):
        self.metrics, self.placement = metrics, placement
        train_objective = objective if objective is not None else loss_objective(loss)
        constrain = jax.lax.with_sharding_constraint

        def train_batch(carry: Carry, rngs: nnx.State, key: jax.Array, x: jax.Array, y: jax.Array) -> Carry:
            step_key = jax.random.fold_in(key, carry.step)
            if augment is not None:
                x, y = augment(x, y, jax.random.fold_in(step_key, AUGMENT_STREAM))

            def loss_fn(params):
                # copy=True: fresh Variables owned by this trace, which reseeding and
                # BatchNorm may mutate (the inputs' Variables belong to the outer trace).
                model = nnx.merge(train_graphdef, params, rngs, carry.state, copy=True)
                reseed_streams(model, tags, step_key)
                with collect_losses() as added:
                    value, y_pred = train_objective(model, x, y, jax.random.fold_in(step_key, OBJECTIVE_STREAM))
                value = with_auxiliary_losses(jnp.asarray(value, jnp.float32), model, added)
                return value, (y_pred, nnx.split(model, *filters(model))[3])

            (value, (y_pred, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(carry.params)
            updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
            params = optax.apply_updates(carry.params, updates)
            sums = update_sums(carry.sums, metrics, value, y, y_pred)
            newly_bad = (carry.bad_step < 0) & ~jnp.isfinite(value)
            good = (carry.bad_step < 0) & ~newly_bad
            # One branch choice for the whole carry, not a select per element of every weight and
            # optimizer slot (that costs a full extra read of the state on every step).
            kept = jax.lax.cond(good, lambda: (params, state, opt_state, sums),
                                lambda: (carry.params, carry.state, carry.opt_state, carry.sums))
            return Carry(*kept, carry.step + 1,
                         jnp.where(newly_bad, carry.step, carry.bad_step),
                         jnp.where(newly_bad, value.astype(jnp.float32), carry.bad_loss))

        def eval_batch(params, state, rngs, sums, x, y, mask):
            model = nnx.merge(eval_graphdef, params, rngs, state)
            with collect_losses(mask) as added:
                y_pred = model(x)
            penalty = with_auxiliary_losses(jnp.zeros((), jnp.float32), model, added)
            return masked_sums(sums, metrics, loss, y, y_pred, mask, penalty)

        def predict_batch(params, state, rngs, x):
            return nnx.merge(eval_graphdef, params, rngs, state)(x)

        # Batches gathered on the devices from arrays uploaded once (split over the mesh by
        # rows): the step gets the batch's first position; `size` is static (a partial last
        # training batch compiles again; evaluation pads it to `size` and masks the rest).
        def train_gather(carry, rngs, key, x_all, y_all, order, start, size):
            index = jax.lax.dynamic_slice_in_dim(order, start, size)
            x, y = (constrain(a[index], placement.layout(size)) for a in (x_all, y_all))
            return train_batch(carry, rngs, key, x, y)

        def eval_gather(params, state, rngs, sums, x_all, y_all, start, count, size):
            positions = start + jnp.arange(size)
            index = jnp.minimum(positions, count - 1)
            x, y, mask = (constrain(a, placement.batched) for a in (x_all[index], y_all[index], positions < count))
            return eval_batch(params, state, rngs, sums, x, y, mask)

        replicated = placement.replicated
        self.train_batch = jax.jit(train_batch, donate_argnums=0, out_shardings=replicated)
        self.train_gather = jax.jit(train_gather, donate_argnums=0, static_argnames="size", out_shardings=replicated)
        self.eval_batch = jax.jit(eval_batch, donate_argnums=3, out_shardings=replicated)
        self.eval_gather = jax.jit(eval_gather, donate_argnums=3, static_argnames="size", out_shardings=replicated)
        self.predict_batch = jax.jit(predict_batch, out_shardings=placement.batched)


class _Identical:
    """A cache-key part equal only to the very same object. Hashing a GraphDef walks the whole
    graph (a tenth of a second for a DenseNet, on every call); ``split`` hands out the same
    derived GraphDef objects for equal graphs, so identity finds them."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Identical) and other.value is self.value


@functools.lru_cache(maxsize=8)
def _cached_steps(train_graphdef: _Identical, eval_graphdef: _Identical, *key) -> Steps:
    return Steps(train_graphdef.value, eval_graphdef.value, *key)


def get_steps(train_graphdef: nnx.GraphDef, eval_graphdef: nnx.GraphDef, loss: Callable,
              metrics: tuple[Metric, ...], optimizer: optax.GradientTransformation | None,
              tags: tuple[str, ...], placement: Placement, augment: Callable | None = None,
              objective: Objective | None = None) -> Steps:
    """Steps for these arguments, reused (with their compilations) while they are alive in
    a small cache, so repeated ``evaluate``/``predict`` calls do not recompile."""
    key = (loss, metrics, optimizer, tags, placement, augment, objective)
    try:
        hash(key)
    except TypeError:  # e.g. a user metric that is not hashable
        return Steps(train_graphdef, eval_graphdef, *key)
    return _cached_steps(_Identical(train_graphdef), _Identical(eval_graphdef), *key)
