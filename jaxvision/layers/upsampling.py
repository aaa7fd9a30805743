"""UpSampling2D: enlarge height and width by integer factors, as ``keras.layers.UpSampling2D``.

Keras repeats rows and columns for ``"nearest"`` and resizes with ``ops.image.resize``
(half-pixel centres, no antialiasing) for ``"bilinear"``; both are reproduced here.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxvision.layers._validate import check_input, layer_label, pair
from jaxvision.layers.base import Layer
from jaxvision.layers.precision import PolicyLike, layer_dtypes

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Repeat (``"nearest"``) or interpolate (``"bilinear"``) to ``size`` times the height and width.

    Args:
      size: the factor, an int or ``(rows, cols)``.
      interpolation: ``"nearest"`` (Keras's default) or ``"bilinear"``.
      name: optional layer name used in error messages and summaries.
      dtype: compute dtype (policy name or dtype; ``None`` is the global policy); floating
        inputs are cast to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> UpSampling2D(2)(jnp.arange(4.0).reshape(1, 2, 2, 1))[0, :, :, 0]
        Array([[0., 0., 1., 1.],
               [0., 0., 1., 1.],
               [2., 2., 3., 3.],
               [2., 2., 3., 3.]], dtype=float32)
        >>> UpSampling2D((2, 3), interpolation="bilinear")(jnp.ones((1, 4, 4, 8))).shape
        (1, 8, 12, 8)
    """

    def __init__(self, size: int | Sequence[int] = 2, interpolation: str = "nearest", *, name: str | None = None,
                 dtype: PolicyLike | None = None):
        self.size = pair("UpSampling2D", "size", size)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"UpSampling2D: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.interpolation, self.name = interpolation, name
        self.dtype = layer_dtypes(dtype, None)[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        check_input(self, x, rank=4)
        x = x.astype(self.dtype)
        rows, cols = self.size
        if self.interpolation == "nearest":
            return jnp.repeat(jnp.repeat(x, rows, axis=1), cols, axis=2)
        n, h, w, c = x.shape
        if 0 in (h, w):
            raise ValueError(f"{layer_label(self)}: cannot interpolate an empty image of shape {tuple(x.shape)}")
        return jax.image.resize(x, (n, h * rows, w * cols, c), method="bilinear", antialias=False)
