"""``Layer``: the base of every jaxvision layer and model, with Keras's ``trainable`` flag.

As in Keras, ``layer.trainable = False`` freezes the layer and, recursively, every layer
inside it; ``model.trainable = True`` unfreezes everything inside again, so a later
``model.layer.trainable = False`` refines it. A parameter is trainable when no module on its
path is frozen (Keras: a frozen container reports no trainable weights), so a plain
``nnx.Module`` given ``trainable = False`` freezes what it holds too. ``fit`` differentiates
and optimises only trainable parameters; frozen ones travel with the non-trainable state.
The flag is a static attribute: it is part of the graph definition, so changing it
recompiles the training step, and a frozen ``BatchNormalization`` runs in inference mode.
"""

import math
from collections.abc import Callable

import jax
from flax import nnx

from jaxvision.layers.regularizers import add_loss


def set_trainable(module: nnx.Module, value: bool) -> None:
    """Set ``trainable`` on ``module`` and every module inside it (what ``layer.trainable = v`` does)."""
    for _, node in nnx.iter_graph(module):
        if isinstance(node, nnx.Module):
            # A Layer keeps the flag behind its property; a plain module as a plain attribute.
            if isinstance(node, Layer):
                node._trainable = bool(value)
            else:
                node.trainable = bool(value)


class Layer(nnx.Module):
    """Base class adding Keras's recursive ``trainable`` flag.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import BatchNormalization, Dense
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Dense(2, 3, rngs=nnx.Rngs(0)), BatchNormalization(3, rngs=nnx.Rngs(0))])
        >>> model.trainable = False
        >>> model.dense.trainable, count_params(model)
        (False, (0, 21))
        >>> model.trainable = True; model.batch_normalization.trainable = False
        >>> count_params(model)
        (9, 12)
    """

    def add_loss(self, value: jax.Array) -> None:
        """Add ``value`` to the loss ``fit`` minimises (Keras's ``add_loss``, e.g. an activity
        penalty computed in ``__call__``); see ``jaxvision.layers.regularizers``."""
        add_loss(value)

    @property
    def trainable(self) -> bool:
        return self.__dict__.get("_trainable", True)

    @property
    def trainable_weights(self) -> list[jax.Array]:
        """The parameters ``fit`` trains, as Keras's ``trainable_weights`` (listing 8.29 counts
        them: 154 for the Xception base, 0 once ``base.trainable = False``)."""
        return jax.tree.leaves(weight_states(self)[0])

    @property
    def non_trainable_weights(self) -> list[jax.Array]:
        """Frozen parameters and BatchNorm moving statistics, as Keras's ``non_trainable_weights``."""
        return jax.tree.leaves(weight_states(self)[1])

    @trainable.setter
    def trainable(self, value: bool) -> None:
        set_trainable(self, value)


def sublayers(module: nnx.Module) -> list[tuple[str, nnx.Module]]:
    """The modules stored as attributes of ``module``, in its ``layer_names`` order (the
    Keras layer order every jaxvision model records; attribute order is lost when NNX
    rebuilds a module, e.g. after ``nnx.merge``), then any others in attribute order."""
    children = {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, nnx.Module)}
    ordered = [n for n in getattr(module, "layer_names", ()) if n in children]
    return [(n, children[n]) for n in ordered] + [(n, v) for n, v in children.items() if n not in ordered]


def frozen_paths(module: nnx.Module) -> tuple[tuple, ...]:
    """Paths (attribute keys from ``module``) of the modules whose ``trainable`` is False."""
    return tuple(path for path, node in nnx.iter_graph(module)
                 if isinstance(node, nnx.Module) and not getattr(node, "trainable", True))


def trainable_filter(module: nnx.Module, *, frozen: tuple[tuple, ...] | None = None
                     ) -> Callable[[tuple, object], bool]:
    """An ``nnx`` filter selecting the trainable ``nnx.Param`` of ``module``: its paths are
    relative to ``module``, as in ``nnx.split(module, trainable_filter(module), ...)``.
    ``frozen``: ``frozen_paths(module)`` when already known (it walks the whole graph)."""
    frozen = frozen_paths(module) if frozen is None else frozen

    def is_trainable(path: tuple, value: object) -> bool:
        return isinstance(value, nnx.Param) and not any(path[:len(p)] == p for p in frozen)

    return is_trainable


def weight_states(module: nnx.Module) -> tuple[nnx.State, nnx.State]:
    """``(trainable, non_trainable)`` weights as Keras splits them: non-trainable are the frozen
    parameters plus the BatchNorm moving statistics."""
    _, trainable, rest, _ = nnx.split(module, trainable_filter(module), nnx.Any(nnx.Param, nnx.BatchStat), ...)
    return trainable, rest


def count_params(module: nnx.Module) -> tuple[int, int]:
    """``(trainable, non_trainable)`` numbers of scalars, as Keras counts them (see
    ``weight_states``)."""
    return tuple(sum(math.prod(v.shape) for v in jax.tree.leaves(state)) for state in weight_states(module))
