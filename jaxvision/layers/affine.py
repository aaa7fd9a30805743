"""Affine resampling shared by RandomRotation and RandomZoom, with Keras 3's conventions.

A transform is one row ``[a0, a1, a2, b0, b1, b2]`` per image: Keras's 8-vector without the
projective pair, which its JAX backend ignores anyway. Output pixel ``(x, y)`` (column, row)
samples the input at column ``a0*x + a1*y + a2``, row ``b0*x + b1*y + b2``.

Sampling follows ``jax.scipy.ndimage.map_coordinates``, which Keras's JAX backend calls:
nearest rounds half away from zero; bilinear weights the four neighbours, and with
``fill_mode="constant"`` each neighbour outside the image contributes ``fill_value``, so
edges blend into the fill rather than being cut sharply.

Examples:
    >>> import jax.numpy as jnp
    >>> image = jnp.arange(4.0).reshape(1, 1, 4, 1)
    >>> shift = jnp.array([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]])  # sample one column to the right
    >>> affine_transform(image, shift, "nearest", "reflect", 0.0)[0, 0, :, 0]
    Array([1., 2., 3., 3.], dtype=float32)
"""

import jax
import jax.numpy as jnp

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def _fold(index: jax.Array, size: int, fill_mode: str) -> jax.Array:
    """Bring integer indices outside ``[0, size)`` back inside, as the fill mode extends the image."""
    if fill_mode == "reflect":  # d c b a | a b c d | d c b a: period 2*size, mirrored at the edge
        index = index % (2 * size)
        return jnp.where(index < size, index, 2 * size - 1 - index)
    if fill_mode == "wrap":
        return index % size
    return jnp.clip(index, 0, size - 1)  # "nearest"; "constant" replaces these by the fill later


def _resample(image: jax.Array, rows: jax.Array, cols: jax.Array, interpolation: str,
              fill_mode: str, fill_value: float) -> jax.Array:
    """Sample one (H, W, C) image at float (rows, cols) of shape (H, W)."""
    height, width = image.shape[:2]
    fill = jnp.asarray(fill_value).astype(image.dtype)

    def pixels(r: jax.Array, c: jax.Array) -> jax.Array:
        value = image[_fold(r, height, fill_mode), _fold(c, width, fill_mode)]
        if fill_mode == "constant":
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            value = jnp.where(inside[..., None], value, fill)
        return value

    if interpolation == "nearest":
        # lax.round rounds half away from zero (jnp.round would round half to even).
        return pixels(jax.lax.round(rows).astype(jnp.int32), jax.lax.round(cols).astype(jnp.int32))
    top, left = jnp.floor(rows), jnp.floor(cols)
    dy, dx = (rows - top)[..., None], (cols - left)[..., None]
    top, left = top.astype(jnp.int32), left.astype(jnp.int32)
    out = ((1 - dy) * (1 - dx) * pixels(top, left) + (1 - dy) * dx * pixels(top, left + 1)
           + dy * (1 - dx) * pixels(top + 1, left) + dy * dx * pixels(top + 1, left + 1))
    return out.astype(image.dtype)


def affine_transform(images: jax.Array, transforms: jax.Array, interpolation: str,
                     fill_mode: str, fill_value: float) -> jax.Array:
    """Resample each (N, H, W, C) image through its own row of ``transforms`` (N, 6)."""
    height, width = images.shape[1:3]
    y, x = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                        indexing="ij")
    a0, a1, a2, b0, b1, b2 = (transforms[:, i, None, None].astype(jnp.float32) for i in range(6))
    # Keras's summation order (row term, column term, offset), so nearest-rounding ties agree.
    rows = y * b1 + x * b0 + b2
    cols = y * a1 + x * a0 + a2

    def one(image: jax.Array, r: jax.Array, c: jax.Array) -> jax.Array:
        return _resample(image, r, c, interpolation, fill_mode, fill_value)

    return jax.vmap(one)(images, rows, cols)


def rotation_transforms(angles: jax.Array, height: int, width: int) -> jax.Array:
    """Keras's rotation about the image centre for ``angles`` in degrees (positive is
    counter-clockwise on screen), as rows for ``affine_transform``."""
    theta = angles.astype(jnp.float32) * jnp.float32(jnp.pi / 180.0)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    return jnp.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1], axis=1)


def zoom_transforms(zooms: jax.Array, height: int, width: int) -> jax.Array:
    """Keras's zoom about the image centre; ``zooms`` is (N, 2) ``[height_zoom, width_zoom]``,
    above 1 zooms out (the output samples a larger area of the input)."""
    zy, zx = zooms[:, 0].astype(jnp.float32), zooms[:, 1].astype(jnp.float32)
    zero = jnp.zeros_like(zx)
    x_offset = (width - 1.0) / 2.0 * (1.0 - zx)
    y_offset = (height - 1.0) / 2.0 * (1.0 - zy)
    return jnp.stack([zx, zero, x_offset, zero, zy, y_offset], axis=1)
