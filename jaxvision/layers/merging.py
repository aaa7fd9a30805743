"""Add, Multiply, Concatenate and ScaledAdd: the layers that join branches of a graph.

Keras semantics reproduced here:

* The layers take a *list* of arrays (one array is allowed, as in Keras, and is returned).
* Add and Multiply combine left to right, ``((x0 + x1) + x2) + ...``, so float rounding is
  Keras's; inputs of equal rank broadcast where one of them has size 1 on an axis, and the
  batch sizes must agree.
* Concatenate joins along ``axis`` (default -1, the channels); every other axis must agree.
* ScaledAdd is ``x0 + x1 * scale``, Keras's ``CustomScaleLayer`` of InceptionResNetV2 (the
  residual scaling of Szegedy et al., 2016); Keras names it ``custom_scale_layer``.

Floating inputs are cast to the compute dtype first, as every Keras layer does.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxvision.layers._validate import layer_label
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, autocast, layer_dtypes


def _inputs(layer: Layer, inputs: Sequence[jax.Array], minimum: int = 1) -> list[jax.Array]:
    """The list of inputs, autocast; a clear error for anything but a list of arrays."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) < minimum:
        raise ValueError(f"{layer_label(layer)}: expected a list of at least {minimum} arrays, "
                         f"got {type(inputs).__name__}" + (f" of {len(inputs)}" if isinstance(inputs, (list, tuple))
                                                           else ""))
    arrays = []
    for i, x in enumerate(inputs):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise ValueError(f"{layer_label(layer)}: input {i} is a {type(x).__name__}, not an array")
        arrays.append(autocast(jnp.asarray(x), layer.dtype))
    return arrays


def _check_broadcastable(layer: Layer, arrays: list[jax.Array]) -> None:
    """Keras's elementwise merge rule: equal rank and batch size, other axes equal or 1."""
    shapes = [tuple(x.shape) for x in arrays]
    if len({len(s) for s in shapes}) > 1 or len({s[0] for s in shapes if s}) > 1 or any(
            len({d for d in axis if d != 1}) > 1 for axis in zip(*(s[1:] for s in shapes))):
        raise ValueError(f"{layer_label(layer)}: inputs have incompatible shapes {shapes}; they need the same "
                         "rank and batch size, and every other axis equal or 1")


class _Merge(Layer):
    def __init__(self, *, name: str | None = None, dtype: PolicyLike | None = None):
        self.name = name
        self.dtype = layer_dtypes(dtype, None)[0]


class Add(_Merge):
    """The elementwise sum of a list of arrays, like ``keras.layers.Add``.

    Args:
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> Add()([jnp.ones((2, 3)), jnp.full((2, 3), 2.0), jnp.full((2, 1), 3.0)])[0]
        Array([6., 6., 6.], dtype=float32)
    """

    def __call__(self, inputs: Sequence[jax.Array]) -> jax.Array:
        arrays = _inputs(self, inputs)
        _check_broadcastable(self, arrays)
        out = arrays[0]
        for x in arrays[1:]:
            out = out + x
        return out


class Multiply(_Merge):
    """The elementwise product of a list of arrays, like ``keras.layers.Multiply`` (e.g. a
    squeeze-and-excitation gate of shape (N, 1, 1, C) times features (N, H, W, C)).

    Args:
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> Multiply()([jnp.full((1, 2, 2, 3), 2.0), jnp.array([0.0, 1.0, 2.0]).reshape(1, 1, 1, 3)])[0, 0, 0]
        Array([0., 2., 4.], dtype=float32)
    """

    def __call__(self, inputs: Sequence[jax.Array]) -> jax.Array:
        arrays = _inputs(self, inputs)
        _check_broadcastable(self, arrays)
        out = arrays[0]
        for x in arrays[1:]:
            out = out * x
        return out


class Concatenate(_Merge):
    """Join a list of arrays along ``axis``, like ``keras.layers.Concatenate``.

    Args:
      axis: the axis to join along (default -1: channels); all other axes must agree.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> Concatenate()([jnp.ones((2, 4, 4, 3)), jnp.ones((2, 4, 4, 5))]).shape
        (2, 4, 4, 8)
    """

    def __init__(self, axis: int = -1, *, name: str | None = None, dtype: PolicyLike | None = None):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Concatenate: axis must be an int, got {axis!r}")
        super().__init__(name=name, dtype=dtype)
        self.axis = axis

    def __call__(self, inputs: Sequence[jax.Array]) -> jax.Array:
        arrays = _inputs(self, inputs)
        shapes = [tuple(x.shape) for x in arrays]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(f"{layer_label(self)}: cannot concatenate shapes {shapes} along axis {self.axis}; "
                             "the inputs need one rank that has that axis")
        axis = self.axis % rank
        if len({s[:axis] + s[axis + 1:] for s in shapes}) > 1:
            raise ValueError(f"{layer_label(self)}: inputs need matching shapes except on the concatenation axis "
                             f"{self.axis}, got {shapes}")
        return jnp.concatenate(arrays, axis=axis)


class ScaledAdd(_Merge):
    """``inputs[0] + inputs[1] * scale``: a residual branch scaled before it is added, exactly
    as Keras's InceptionResNetV2 computes it (its ``CustomScaleLayer``).

    Args:
      scale: the factor of the second input (0.17, 0.1 or 0.2 in InceptionResNetV2).
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> ScaledAdd(0.5)([jnp.ones((1, 2)), jnp.full((1, 2), 4.0)])
        Array([[3., 3.]], dtype=float32)
    """

    def __init__(self, scale: float, *, name: str | None = None, dtype: PolicyLike | None = None):
        super().__init__(name=name, dtype=dtype)
        self.scale = float(scale)

    def __call__(self, inputs: Sequence[jax.Array]) -> jax.Array:
        arrays = _inputs(self, inputs, minimum=2)
        if len(arrays) != 2:
            raise ValueError(f"{layer_label(self)}: expected a list of 2 arrays [residual, branch], got {len(arrays)}")
        _check_broadcastable(self, arrays)
        return arrays[0] + arrays[1] * self.scale
