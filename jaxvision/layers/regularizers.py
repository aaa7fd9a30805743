"""Auxiliary losses, as Keras adds them to the training loss: weight regularizers
(``kernel_regularizer=``), activity regularizers (``activity_regularizer=``) and ``add_loss``.

Keras's ``compute_loss`` is the compiled loss plus ``sum(model.losses)``; ``fit``,
``evaluate`` and the validation pass here do the same: [weight_penalty][jaxvision.layers.weight_penalty] adds
``regularizer(weight)`` for every *trainable* weight that has one (a frozen layer adds
nothing, as in Keras), and [collect_losses][jaxvision.layers.collect_losses] gathers what the layers pass to
[add_loss][jaxvision.layers.add_loss] while the model runs (an activity regularizer's ``regularizer(output)`` divided by
the batch size, as Keras 3 does). Outside a [collect_losses][jaxvision.layers.collect_losses] block ``add_loss`` does
nothing, so a plain ``model(x)`` costs no extra work. Only the losses added at the level of
the collecting trace count: a forward pass inside a nested ``jax.grad`` (e.g. a gradient
penalty's) adds nothing, since its values would not exist outside that transform.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import jax
import jax.extend
import jax.numpy as jnp
from flax import nnx

Regularizer = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class L1L2:
    """``l1 * sum(|x|) + l2 * sum(x²)``, Keras's ``L1L2`` (``L1``/``L2`` set one factor).

    Examples:
        >>> import jax.numpy as jnp
        >>> float(L1L2(l1=0.5, l2=0.25)(jnp.array([1.0, -2.0])))
        2.75
    """

    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, x: jax.Array) -> jax.Array:
        penalty = jnp.zeros((), x.dtype)
        if self.l1:
            penalty += jnp.asarray(self.l1, x.dtype) * jnp.sum(jnp.abs(x))
        if self.l2:
            penalty += jnp.asarray(self.l2, x.dtype) * jnp.sum(jnp.square(x))
        return penalty


def L1(l1: float = 0.01) -> L1L2:  # noqa: N802  (Keras's class name)
    """Keras's ``L1``: ``l1 * sum(|x|)``."""
    return L1L2(l1=l1)


def L2(l2: float = 0.01) -> L1L2:  # noqa: N802  (Keras's class name)
    """Keras's ``L2``: ``l2 * sum(x²)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(L2(0.1)(jnp.array([3.0, 4.0])))
        2.5
    """
    return L1L2(l2=l2)


_NAMED = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def get_regularizer(regularizer: str | Regularizer | None, *, what: str = "regularizer") -> Regularizer | None:
    """``None``, a Keras name (``"l1"``, ``"l2"``, ``"l1_l2"``: factor 0.01) or a callable
    ``array -> scalar`` (kept as is; make it hashable, e.g. a frozen dataclass, since layers
    keep it as a static attribute)."""
    if regularizer is None or callable(regularizer):
        return regularizer
    if regularizer not in _NAMED:
        raise ValueError(f"unknown {what} {regularizer!r}; known: {sorted(_NAMED)}, or a callable")
    return _NAMED[regularizer]()


_collectors: list[tuple[list[jax.Array], object, jax.Array | None]] = []


def _trace_state() -> object:
    return jax.extend.core.get_opaque_trace_state(convention="nnx")


@contextlib.contextmanager
def collect_losses(mask: jax.Array | None = None) -> Iterator[list[jax.Array]]:
    """Collect the losses that layers pass to [add_loss][jaxvision.layers.add_loss] while the block runs.

    ``mask`` (one bool per example) marks the real rows of a padded batch: activity
    penalties then count only those rows (evaluation pads a partial last batch).

    Examples:
        >>> import jax.numpy as jnp
        >>> with collect_losses() as losses:
        ...     add_loss(jnp.float32(2.0))
        >>> [float(v) for v in losses]
        [2.0]
    """
    losses: list[jax.Array] = []
    _collectors.append((losses, _trace_state(), mask))
    try:
        yield losses
    finally:
        _collectors.pop()


def add_loss(value: jax.Array) -> None:
    """Add a scalar to the loss being computed (Keras's ``layer.add_loss``); a no-op outside
    [collect_losses][jaxvision.layers.collect_losses] or inside a transform nested in the collecting trace."""
    if _collectors and _collectors[-1][1] == _trace_state():
        _collectors[-1][0].append(jnp.sum(jnp.asarray(value, jnp.float32)))


def activity_penalty(regularizer: Regularizer | None, output: jax.Array) -> None:
    """Keras 3's activity regularization of a layer output: ``regularizer(output)`` divided
    by the batch size, added with [add_loss][jaxvision.layers.add_loss]."""
    if regularizer is None or not _collectors:
        return
    mask = _collectors[-1][2]
    if mask is None or output.shape[:1] != mask.shape:
        add_loss(regularizer(output) / output.shape[0])
    else:
        keep = mask.reshape(mask.shape + (1,) * (output.ndim - 1))
        add_loss(regularizer(jnp.where(keep, output, jnp.zeros_like(output))) / jnp.sum(mask))


def weight_penalty(model: nnx.Module, trainable: Callable[[tuple, object], bool]) -> jax.Array | None:
    """The sum of every weight regularizer over the *trainable* weights of ``model``
    (``trainable`` is [trainable_filter][jaxvision.layers.base.trainable_filter]'s predicate), or
    ``None`` when no trainable weight has one."""
    total = None
    for path, module in nnx.iter_graph(model):
        if not isinstance(module, nnx.Module):
            continue
        for name in ("kernel", "bias"):
            regularizer = getattr(module, f"{name}_regularizer", None)
            variable = getattr(module, name, None)
            if regularizer is not None and variable is not None and trainable((*path, name), variable):
                penalty = regularizer(variable[...]).astype(jnp.float32)
                total = penalty if total is None else total + penalty
    return total
