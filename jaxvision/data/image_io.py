"""Decode image files to RGB float32 arrays and resize them the way Keras does.

Keras's grain path (``keras.utils.image_dataset_from_directory(format="grain")``) decodes
with Pillow, converts to RGB and calls ``keras.ops.image.resize``, which on the JAX backend is
``jax.image.resize(..., antialias=False)``: half-pixel-centred linear interpolation with no
low-pass filter when shrinking (like TensorFlow's ``tf.image.resize``). ``resize`` below
rebuilds those interpolation weights in NumPy, so data loading needs no JAX (worker
processes stay light). The weights are the same float32 numbers; the sums differ in
rounding only (jax contracts every input pixel, most with weight 0, and its CPU matmul
was seen to drift up to ~1e-3 on the 0-255 scale; ours is within ~2e-5 of exact).

Images are untrusted input: ``open_image`` opens only regular files and refuses an image
whose header declares more than ``MAX_IMAGE_PIXELS`` pixels before anything is decoded
(a 76 KiB PNG can declare 9000 × 9000, under Pillow's own bomb limit, and decode to gigabytes).
"""

import contextlib
import os
from collections.abc import Iterator

import numpy as np
from PIL import Image

from jaxvision.untrusted import regular_file

MAX_IMAGE_PIXELS = 40_000_000  # 40 MP: larger than any camera photo the book uses; set it to allow more

# Modes that hold more than 8 bits per pixel in one channel (16-bit PNG opens as "I;16").
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
INTERPOLATIONS = ("bilinear", "nearest")


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """A decoded Pillow image as float32 ``(H, W, 3)`` in [0, 255].

    Alpha is dropped (not composited), as Keras and ``tf.io.decode_png(channels=3)`` do.
    16-bit grey is scaled to the 8-bit range by ``v / 257`` (65535 -> 255.0), where Keras's
    ``img.convert("RGB")`` would clip every value above 255.

    Examples:
        >>> to_rgb_array(Image.new("I;16", (2, 1), 25700))[0, 0].tolist()
        [100.0, 100.0, 100.0]
        >>> to_rgb_array(Image.new("CMYK", (1, 1), (0, 255, 255, 0)))[0, 0].tolist()
        [255.0, 0.0, 0.0]
    """
    if img.mode in _WIDE_GREY:
        grey = np.clip(np.asarray(img, dtype=np.float32), 0, 65535) / np.float32(257)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode in ("P", "PA"):
        # Via RGBA: a palette with transparency would otherwise make Pillow warn.
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32)


@contextlib.contextmanager
def open_image(path: str | os.PathLike) -> Iterator[Image.Image]:
    """``Image.open`` for untrusted files: a regular file whose declared size is at most
    ``MAX_IMAGE_PIXELS`` pixels (checked on the header, before decoding).

    Raises:
        ValueError: not a regular file, not an image, or too many pixels; the message names it.
    """
    try:
        regular_file(path, "image file")
        img = Image.open(path)
    except Exception as e:  # a dangling link, a FIFO; Pillow's UnidentifiedImageError, DecompressionBombError…
        raise ValueError(f"cannot decode image file {os.fspath(path)}: {type(e).__name__}: {e}") from e
    with img:
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ValueError(f"image file {os.fspath(path)} declares {width} × {height} = {width * height:,} pixels, "
                             f"more than jaxvision.data.image_io.MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS:,}); refused")
        yield img


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file (first frame of a GIF) to float32 ``(H, W, 3)`` in [0, 255].

    Raises:
        ValueError: the file is unreadable, corrupt or truncated; the message names it.
    """
    with open_image(path) as img:
        try:
            img.load()  # decode now, so truncation is caught here and not later
            return to_rgb_array(img)
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError… for bad files
            raise ValueError(f"cannot decode image file {os.fspath(path)}: {type(e).__name__}: {e}") from e


def check_decodable(path: str | os.PathLike) -> str | None:
    """``None`` if the file decodes, else the reason. JPEGs decode at 1/8 scale (fast,
    but the whole compressed stream is still read, so truncation is still found)."""
    try:
        with open_image(path) as img:
            img.draft("RGB", (1, 1))
            img.load()
            to_rgb_array(img)
    except Exception as e:
        cause = e.__cause__ or e  # the decoder's own error, not open_image's wrapper
        return f"{type(cause).__name__}: {cause}"
    return None


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two source indices and weights of each output pixel for jax's triangle kernel
    with antialias=False (it never spans more than two input pixels), computed in float32
    as jax does, with the weights renormalised where a tap falls off the edge."""
    inv_scale = np.float32(in_size / out_size)
    centres = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * inv_scale - np.float32(0.5)
    lo = np.floor(centres).astype(np.int64)
    taps, weights = [], []
    for index in (lo, lo + 1):
        w = np.maximum(np.float32(0), np.float32(1) - np.abs(centres - index.astype(np.float32)))
        inside = (index >= 0) & (index < in_size)
        weights.append(np.where(inside, w, np.float32(0)))
        taps.append(np.clip(index, 0, in_size - 1))
    total = weights[0] + weights[1]
    return taps[0], taps[1], weights[0] / total, weights[1] / total


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel: ``floor((i + 0.5) * in / out)``, as jax and Pillow."""
    offsets = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * np.float32(in_size)
    return np.minimum(np.floor(offsets / np.float32(out_size)).astype(np.int64), in_size - 1)


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """Resize an ``(H, W)`` or ``(H, W, C)`` array to ``size = (height, width)``.

    ``"bilinear"`` returns float32 and matches ``jax.image.resize(..., antialias=False)``;
    ``"nearest"`` keeps the dtype (use it for label masks).

    Examples:
        >>> x = np.array([[0.0, 10.0], [20.0, 30.0]], np.float32)
        >>> resize(x, (4, 4))[0].tolist()
        [0.0, 2.5, 7.5, 10.0]
        >>> resize(np.array([[1, 2], [3, 4]], np.uint8), (3, 3), "nearest").tolist()
        [[1, 2, 2], [3, 4, 4], [3, 4, 4]]
    """
    height, width = image.shape[:2]
    if interpolation == "nearest":
        return image[nearest_indices(height, size[0])][:, nearest_indices(width, size[1])]
    if interpolation != "bilinear":
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    out = np.asarray(image, dtype=np.float32)
    # Gathers, not matrix products: tiny BLAS calls crawl when BLAS threads fight for cores.
    if size[0] != height:  # jax skips axes whose size does not change; so do we
        lo, hi, w_lo, w_hi = _linear_taps(height, size[0])
        shape = (-1,) + (1,) * (out.ndim - 1)
        out = out[lo] * w_lo.reshape(shape) + out[hi] * w_hi.reshape(shape)
    if size[1] != width:
        lo, hi, w_lo, w_hi = _linear_taps(width, size[1])
        shape = (1, -1) + (1,) * (out.ndim - 2)
        out = out[:, lo] * w_lo.reshape(shape) + out[:, hi] * w_hi.reshape(shape)
    return out
