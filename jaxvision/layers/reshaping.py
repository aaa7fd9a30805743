"""ZeroPadding2D, Cropping2D and Reshape: the shape-only layers of keras.applications."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxvision.layers._validate import check_input, layer_label
from jaxvision.layers.base import Layer


def _padding_pairs(padding: int | Sequence, kind: str = "ZeroPadding2D", what: str = "padding"
                   ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's three spellings: ``p``, ``(ph, pw)`` or ``((top, bottom), (left, right))``."""
    if isinstance(padding, int):
        pairs = ((padding, padding), (padding, padding))
    elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
        pairs = ((padding[0], padding[0]), (padding[1], padding[1]))
    elif len(padding) == 2 and all(not isinstance(p, int) and len(p) == 2 for p in padding):
        pairs = (tuple(padding[0]), tuple(padding[1]))
    else:
        pairs = None
    if pairs is None or not all(isinstance(v, int) and v >= 0 for pair in pairs for v in pair):
        raise ValueError(f"{kind}: {what} must be an int, (rows, cols) or "
                         f"((top, bottom), (left, right)) of non-negative ints, got {padding!r}")
    return pairs


class ZeroPadding2D(Layer):
    """Pad height and width with zeros, like ``keras.layers.ZeroPadding2D``.

    Args:
      padding: ``p``, ``(rows, cols)`` (symmetric) or ``((top, bottom), (left, right))``.
      name: optional layer name used in error messages and summaries.

    Examples:
        >>> import jax.numpy as jnp
        >>> ZeroPadding2D(((0, 1), (0, 1)))(jnp.ones((2, 4, 4, 3))).shape
        (2, 5, 5, 3)
    """

    def __init__(self, padding: int | Sequence = 1, *, name: str | None = None):
        self.padding, self.name = _padding_pairs(padding), name

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        return jnp.pad(x, ((0, 0), *self.padding, (0, 0)))


class Cropping2D(Layer):
    """Remove rows and columns at the borders, like ``keras.layers.Cropping2D`` (NASNet).

    Args:
      cropping: ``c``, ``(rows, cols)`` (symmetric) or ``((top, bottom), (left, right))``.
      name: optional layer name used in error messages and summaries.

    Examples:
        >>> import jax.numpy as jnp
        >>> Cropping2D(((1, 0), (1, 0)))(jnp.ones((2, 5, 5, 3))).shape
        (2, 4, 4, 3)
    """

    def __init__(self, cropping: int | Sequence = ((0, 0), (0, 0)), *, name: str | None = None):
        self.cropping, self.name = _padding_pairs(cropping, "Cropping2D", "cropping"), name

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        (top, bottom), (left, right) = self.cropping
        if top + bottom >= x.shape[1] or left + right >= x.shape[2]:
            raise ValueError(f"{layer_label(self)}: cropping {self.cropping} leaves nothing of an input of spatial "
                             f"size {tuple(x.shape[1:3])}")
        return x[:, top:x.shape[1] - bottom, left:x.shape[2] - right, :]


class Reshape(Layer):
    """Reshape every example to ``target_shape`` (the batch axis is kept), like
    ``keras.layers.Reshape``; one entry may be ``-1``.

    Args:
      target_shape: the shape of one example.
      name: optional layer name used in error messages and summaries.

    Examples:
        >>> import jax.numpy as jnp
        >>> Reshape((10,))(jnp.ones((2, 1, 1, 10))).shape
        (2, 10)
    """

    def __init__(self, target_shape: Sequence[int], *, name: str | None = None):
        self.target_shape, self.name = tuple(int(d) for d in target_shape), name
        if sum(d == -1 for d in self.target_shape) > 1 or any(d < -1 or d == 0 for d in self.target_shape):
            raise ValueError(f"Reshape: target_shape must hold positive sizes and at most one -1, "
                             f"got {tuple(target_shape)!r}")

    def __call__(self, x: jax.Array) -> jax.Array:
        size = 1
        for d in x.shape[1:]:
            size *= d
        known = 1
        for d in self.target_shape:
            known *= d if d != -1 else 1
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape and size != known):
            raise ValueError(f"{layer_label(self)}: cannot reshape examples of shape {tuple(x.shape[1:])} "
                             f"to {self.target_shape}")
        return x.reshape(x.shape[0], *self.target_shape)
