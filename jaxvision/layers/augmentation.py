"""RandomFlip, RandomRotation and RandomZoom: Keras 3's spatial augmentation layers in jax.

Each image of a batch draws its own parameters from the layer's ``augment`` rng stream; the
layers are identity when ``deterministic``, the inference mode every layer starts in (``model.train()``
switches them on, as ``fit`` does inside its step). ``sample(key, n)`` draws
the per-image parameters and ``transform(images, params)`` applies them, so a fixed transform
is one call away and a data pipeline can drive the layers with explicit keys
([AugmentBatch][jaxvision.layers.AugmentBatch]).

Segmentation masks, (N, H, W) or (N, H, W, 1) of any dtype, move with their images under the
same parameters. As in Keras, masks are resampled nearest-neighbour (no new labels appear)
with the image's ``fill_mode``; with ``"constant"`` the filled mask pixels get ``fill_value``
cast to the mask dtype, so keep it a valid label (the default 0 is usually "background").

The layers take no dtype policy: images keep their dtype, and the resampling arithmetic
(coordinates, interpolation weights, blends) is float32 whatever the policy, so a mixed-precision
model augments its float32 input batches in float32.
"""

import functools
import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.layers._validate import check_input, layer_label
from jaxvision.layers.affine import (
    FILL_MODES, INTERPOLATIONS, affine_transform, rotation_transforms, zoom_transforms)
from jaxvision.layers.base import Layer

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class _Augmentation(Layer):
    """Plumbing shared by the layers: eval-mode identity, unbatched images, masks."""

    def __init__(self, rngs: nnx.Rngs, name: str | None):
        self.name = name
        self.deterministic = True  # inference mode until model.train(), like every layer
        self.rngs = rngs.augment

    def sample(self, key: jax.Array, batch_size: int) -> jax.Array:
        """Independent parameters for each of ``batch_size`` images, drawn from ``key``."""
        raise NotImplementedError

    def _apply(self, x: jax.Array, params: jax.Array, is_mask: bool) -> jax.Array:
        raise NotImplementedError

    def transform(self, images: jax.Array, params: jax.Array, masks: jax.Array | None = None):
        """Apply explicit per-image ``params`` (as from ``sample``) to a batch; with
        ``masks``, return ``(images, masks)`` transformed alike."""
        params = jnp.asarray(params)
        images = self._apply(jnp.asarray(images), params, is_mask=False)
        if masks is None:
            return images
        masks = jnp.asarray(masks)
        with_channel = masks if masks.ndim == 4 else masks[..., None]
        return images, self._apply(with_channel, params, is_mask=True).reshape(masks.shape)

    def __call__(self, images: jax.Array, masks: jax.Array | None = None):
        """Augment (N, H, W, C) images or one (H, W, C) image, each with fresh parameters from
        the ``augment`` stream; with ``masks``, return ``(images, masks)``."""
        batched = self._check(images, masks)
        if self.deterministic:
            return images if masks is None else (images, masks)
        if not batched:
            images, masks = images[None], None if masks is None else masks[None]
        out = self.transform(images, self.sample(self.rngs(), images.shape[0]), masks)
        return out if batched else jax.tree.map(lambda a: a[0], out)

    def _check(self, images: jax.Array, masks: jax.Array | None) -> bool:
        """Validate inputs; True when ``images`` is a batch (N, H, W, C)."""
        ndim = getattr(images, "ndim", None)
        if ndim not in (3, 4):
            shape = getattr(images, "shape", type(images).__name__)
            raise ValueError(f"{layer_label(self)}: expected images (batch, height, width, channels) "
                             f"or one (height, width, channels) image, got {shape}")
        check_input(self, images, rank=ndim)
        if masks is not None and tuple(masks.shape) not in (images.shape[:-1], (*images.shape[:-1], 1)):
            raise ValueError(f"{layer_label(self)}: masks must have shape {images.shape[:-1]} or "
                             f"{(*images.shape[:-1], 1)} to match images {images.shape}, got {masks.shape}")
        return ndim == 4


class RandomFlip(_Augmentation):
    """Flip images left-right and/or upside-down, each image with probability 0.5.

    Like Keras 3, ``"horizontal_and_vertical"`` draws one coin per image and flips both axes
    together (a 180° turn) or neither. Parameters are (N, 2) booleans ``[left-right, up-down]``.

    Args:
      mode: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``.
      rngs: ``nnx.Rngs``; the ``augment`` stream drives the flips.
      name: optional layer name used in error messages.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> flip = RandomFlip("horizontal", rngs=nnx.Rngs(augment=0))
        >>> flip.transform(jnp.arange(3.0).reshape(1, 1, 3, 1), jnp.array([[True, False]]))[0, 0, :, 0]
        Array([2., 1., 0.], dtype=float32)
    """

    def __init__(self, mode: str = "horizontal_and_vertical", *, rngs: nnx.Rngs, name: str | None = None):
        if mode not in FLIP_MODES:
            raise ValueError(f"RandomFlip: mode must be one of {FLIP_MODES}, got {mode!r}")
        super().__init__(rngs, name)
        self.mode = mode

    def sample(self, key: jax.Array, batch_size: int) -> jax.Array:
        coin = jax.random.uniform(key, (batch_size,)) <= 0.5  # Keras's test, one coin per image
        return jnp.stack([coin & (self.mode != "vertical"), coin & (self.mode != "horizontal")], axis=1)

    def _apply(self, x: jax.Array, params: jax.Array, is_mask: bool) -> jax.Array:
        x = jnp.where(params[:, 0, None, None, None], x[:, :, ::-1], x)
        return jnp.where(params[:, 1, None, None, None], x[:, ::-1], x)


def _factor_range(layer_kind: str, argument: str, factor, closed_low: bool) -> tuple[float, float]:
    """Keras's factor: a number ``f`` → ``(-|f|, |f|)``, or a ``(lower, upper)`` pair, sorted.
    Every value must lie in [-1, 1], or in (-1, 1] when ``closed_low`` is False."""
    is_pair = isinstance(factor, (tuple, list))
    values = tuple(factor) if is_pair else (factor,)
    valid = len(values) == (2 if is_pair else 1) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and (-1 <= v if closed_low else -1 < v) and v <= 1
        for v in values)
    if not valid:
        interval = "[-1, 1]" if closed_low else "(-1, 1]"
        raise ValueError(f"{layer_kind}: {argument} must be a number or a (lower, upper) pair "
                         f"with values in {interval}, got {factor!r}")
    lower, upper = sorted(values) if is_pair else (-abs(values[0]), abs(values[0]))
    return float(lower), float(upper)


class _AffineAugmentation(_Augmentation):
    """An augmentation that resamples through a per-image affine transform."""

    def __init__(self, fill_mode: str, interpolation: str, fill_value: float, rngs: nnx.Rngs, name: str | None):
        kind = type(self).__name__
        if fill_mode not in FILL_MODES:
            raise ValueError(f"{kind}: fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{kind}: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        super().__init__(rngs, name)
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def _transforms(self, params: jax.Array, height: int, width: int) -> jax.Array:
        raise NotImplementedError

    def _apply(self, x: jax.Array, params: jax.Array, is_mask: bool) -> jax.Array:
        transforms = self._transforms(params, x.shape[1], x.shape[2])
        interpolation = "nearest" if is_mask else self.interpolation
        return affine_transform(x, transforms, interpolation, self.fill_mode, self.fill_value)


class RandomRotation(_AffineAugmentation):
    """Rotate each image about its centre by a random angle, as ``keras.layers.RandomRotation``.

    Args:
      factor: fraction of a full turn: ``f`` draws angles in ``[-f, f] * 360°``, a pair
        ``(lower, upper)`` in ``[lower, upper] * 360°``; values in [-1, 1]. Positive turns
        counter-clockwise. Parameters are (N,) angles in degrees.
      fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
      interpolation: ``"bilinear"`` or ``"nearest"``.
      fill_value: the constant for ``fill_mode="constant"``.
      rngs: ``nnx.Rngs``; the ``augment`` stream draws the angles.
      name: optional layer name used in error messages.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> rotate = RandomRotation(0.1, rngs=nnx.Rngs(augment=0))
        >>> rotate(jnp.ones((2, 8, 8, 3))).shape
        (2, 8, 8, 3)
    """

    def __init__(self, factor: float | Sequence[float], fill_mode: str = "reflect",
                 interpolation: str = "bilinear", fill_value: float = 0.0, *, rngs: nnx.Rngs,
                 name: str | None = None):
        self.factor = _factor_range("RandomRotation", "factor", factor, closed_low=True)
        super().__init__(fill_mode, interpolation, fill_value, rngs, name)

    def sample(self, key: jax.Array, batch_size: int) -> jax.Array:
        lower, upper = self.factor
        return jax.random.uniform(key, (batch_size,), minval=lower * 360.0, maxval=upper * 360.0)

    def _transforms(self, params: jax.Array, height: int, width: int) -> jax.Array:
        return rotation_transforms(params, height, width)


class RandomZoom(_AffineAugmentation):
    """Zoom each image about its centre by a random factor, as ``keras.layers.RandomZoom``.

    Args:
      height_factor: ``f`` draws vertical zooms ``1 + [-f, f]``, a pair ``(lower, upper)``
        draws ``1 + [lower, upper]``; values in (-1, 1]. Positive zooms out (the image
        shrinks), negative zooms in.
      width_factor: the same for the horizontal zoom; ``None`` reuses the vertical zoom,
        keeping the aspect ratio. Parameters are (N, 2) zooms ``[height, width]``.
      fill_mode, interpolation, fill_value, rngs, name: as for [RandomRotation][jaxvision.layers.RandomRotation].

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> zoom = RandomZoom(0.2, rngs=nnx.Rngs(augment=0))
        >>> zooms = zoom.sample(jax.random.key(1), 4)
        >>> zooms.shape, bool(jnp.all(zooms[:, 0] == zooms[:, 1]))
        ((4, 2), True)
    """

    def __init__(self, height_factor: float | Sequence[float], width_factor: float | Sequence[float] | None = None,
                 fill_mode: str = "reflect", interpolation: str = "bilinear", fill_value: float = 0.0, *,
                 rngs: nnx.Rngs, name: str | None = None):
        self.height_factor = _factor_range("RandomZoom", "height_factor", height_factor, closed_low=False)
        self.width_factor = None if width_factor is None else _factor_range(
            "RandomZoom", "width_factor", width_factor, closed_low=False)
        super().__init__(fill_mode, interpolation, fill_value, rngs, name)

    def sample(self, key: jax.Array, batch_size: int) -> jax.Array:
        height_key, width_key = jax.random.split(key)
        lower, upper = self.height_factor
        height = jax.random.uniform(height_key, (batch_size,), minval=1.0 + lower, maxval=1.0 + upper)
        if self.width_factor is None:
            return jnp.stack([height, height], axis=1)
        lower, upper = self.width_factor
        width = jax.random.uniform(width_key, (batch_size,), minval=1.0 + lower, maxval=1.0 + upper)
        return jnp.stack([height, width], axis=1)

    def _transforms(self, params: jax.Array, height: int, width: int) -> jax.Array:
        return zoom_transforms(params, height, width)


def augment(layers: Sequence[_Augmentation], images: jax.Array, key: jax.Array,
            masks: jax.Array | None = None):
    """Apply ``layers`` in order to a batch with an explicit ``key`` (pure, so it jits).
    Always augments, whatever the layers' ``deterministic`` flag."""
    for layer, layer_key in zip(layers, jax.random.split(key, len(layers))):
        out = layer.transform(images, layer.sample(layer_key, images.shape[0]), masks)
        images, masks = out if masks is not None else (out, None)
    return images if masks is None else (images, masks)


class AugmentBatch:
    """Augment numpy batches in a grain pipeline with jitted layers, one key per batch.

    ``ds.random_map(AugmentBatch(layers))`` calls it with each element and grain's
    per-element generator, which seeds the key, so a seeded pipeline is reproducible. An
    element is an image batch, or a pair ``(images, targets)``: targets are masks moved with
    the images when ``masks=True``, else labels passed through. ``apply`` takes a key directly.
    For arrays already on the accelerator, pass ``augment=aug.apply_pair`` to
    ``jaxvision.train.fit`` instead: the same augmentation then runs inside the train step.

    Examples:
        >>> import numpy as np
        >>> from flax import nnx
        >>> aug = AugmentBatch([RandomFlip("horizontal", rngs=nnx.Rngs(0))])
        >>> out, labels = aug((np.ones((2, 4, 4, 1), np.float32), np.arange(2)), np.random.default_rng(0))
        >>> type(out).__name__, out.shape, labels
        ('ndarray', (2, 4, 4, 1), array([0, 1]))
    """

    def __init__(self, layers: Sequence[_Augmentation], *, masks: bool = False):
        self.layers, self.masks = tuple(layers), masks
        self._augment = jax.jit(functools.partial(augment, self.layers))

    def apply(self, images: np.ndarray, key: jax.Array, masks: np.ndarray | None = None):
        """Augment one batch (and its masks) with ``key``; returns numpy arrays."""
        return jax.tree.map(np.asarray, self._augment(images, key, masks))

    def apply_pair(self, images: jax.Array, targets: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Augment ``(images, targets)`` with ``key``, in jax (traceable: it runs inside ``jax.jit``)."""
        if self.masks:
            return augment(self.layers, images, key, targets)
        return augment(self.layers, images, key), targets

    def __call__(self, element, rng: np.random.Generator):
        key = jax.random.key(int(rng.integers(2**31)))
        if not isinstance(element, tuple):
            return self.apply(element, key)
        images, targets = element
        return self.apply(images, key, targets) if self.masks else (self.apply(images, key), targets)
