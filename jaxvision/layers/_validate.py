"""Input checks shared by every layer, so a bad call is a clear ``ValueError`` naming the
layer, never an XLA stack trace. All checks read static shapes and dtypes, so they also run
while tracing under ``jax.jit``."""

from collections.abc import Sequence

import jax.numpy as jnp

PADDINGS = ("valid", "same")


def layer_label(layer: object) -> str:
    """``"Conv2D 'conv2d_1'"`` or just ``"Conv2D"`` when the layer has no name."""
    name = getattr(layer, "name", None)
    kind = type(layer).__name__
    return f"{kind} {name!r}" if name else kind


def check_input(layer: object, x, *, rank: int, channels: int | None = None) -> None:
    """Rank, channel count (last axis) and floating dtype of a layer input."""
    shape = getattr(x, "shape", None)
    if shape is None:
        raise ValueError(f"{layer_label(layer)}: expected an array, got {type(x).__name__}")
    if len(shape) != rank:
        layout = {4: "(batch, height, width, channels)", 2: "(batch, features)"}.get(rank, f"rank {rank}")
        raise ValueError(
            f"{layer_label(layer)}: expected input of rank {rank} {layout}, got shape {tuple(shape)}"
        )
    if channels is not None and shape[-1] != channels:
        raise ValueError(
            f"{layer_label(layer)}: expected {channels} input channels (last axis), "
            f"got shape {tuple(shape)}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{layer_label(layer)}: expected a floating-point input, got dtype {x.dtype}; "
            "cast images with x.astype('float32') first"
        )


def check_padding(layer_kind: str, padding: str) -> str:
    """Keras's padding names, case-insensitive; returns the lower-case form."""
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{layer_kind}: padding must be one of {PADDINGS}, got {padding!r}")
    return padding.lower()


def pair(layer_kind: str, argument: str, value: int | Sequence[int]) -> tuple[int, int]:
    """Normalise an int or a pair of positive ints, as Keras does for kernel_size, strides…"""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"{layer_kind}: {argument} must be a positive int or a pair of them, got {value!r}")
    return values


def check_fits(layer: object, x, window: Sequence[int], dilation: Sequence[int] = (1, 1),
               what: str = "(dilated) kernel") -> None:
    """With ``padding="valid"`` the window must fit in the input; Keras would return an
    empty output (or fail inside XLA), which is never what a model meant."""
    if any(n < (k - 1) * d + 1 for n, k, d in zip(x.shape[1:3], window, dilation)):
        raise ValueError(f"{layer_label(layer)}: input of spatial size {tuple(x.shape[1:3])} is smaller than "
                         f"the {what} {tuple(window)} with padding='valid'")
