"""Filter visualisation by gradient ascent in input space (DLwP listings 10.7–10.16).

For one filter of a named layer, start from a grey image with a little noise and climb the
gradient of the filter's mean activation (a 2-pixel border excluded). As the book's
``ops.normalize(grads)`` does (``keras.ops.normalize``: ``axis=-1``), each pixel's channel
gradient is scaled to unit L2 length, so every pixel moves ``step_size`` in colour space;
``normalize="tensor"`` divides by the norm of the whole gradient instead (every step the same
total length), which gives different patterns. [visualize_filters][jaxvision.interpret.visualize_filters] does
many filters at once: ``jax.vmap`` over filters around a ``lax.fori_loop`` of the steps, all in
one ``jax.jit``. [visualize_filter_loop][jaxvision.interpret.visualize_filter_loop] is the book's
way, one filter and one jitted
step at a time; both give the same images.

Input units: the ascent runs on an image ``u`` in the book's units (start uniform in
``init_range`` = [0.4, 0.6], steps of length 10) and feeds the model ``u * input_scale``.
jaxvision models take [0, 255] pixels and rescale inside, so the default ``input_scale=255``
reproduces the book's run on a model that takes [0, 1] images. Returned images are what the
model saw (``u * input_scale``).
"""

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.interpret.activations import check_layers, eval_split
from jaxvision.models.base import Model, Recorder

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), the floor of keras.ops.normalize
NORMALIZE_MODES = ("pixel", "tensor")


def normalize_gradient(grads: jax.Array, mode: str = "pixel") -> jax.Array:
    """The ascent direction: ``keras.ops.normalize(grads)`` for ``"pixel"`` (per pixel, over
    the channel axis: ``x * min(rsqrt(sum(x²)), 1/ε)``, ε = 1e-7, so a zero gradient stays zero),
    or ``grads / max(‖grads‖, ε)`` over the whole tensor for ``"tensor"``.

    Examples:
        >>> import jax.numpy as jnp
        >>> normalize_gradient(jnp.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]))
        Array([[0.6, 0.8, 0. ],
               [0. , 0. , 0. ]], dtype=float32)
        >>> normalize_gradient(jnp.array([[3.0, 4.0, 0.0], [0.0, 0.0, 5.0]]), "tensor").round(4)
        Array([[0.4243, 0.5657, 0.    ],
               [0.    , 0.    , 0.7071]], dtype=float32)
    """
    _check_normalize(mode)
    if mode == "pixel":
        inverse_norm = jax.lax.rsqrt(jnp.sum(jnp.square(grads), axis=-1, keepdims=True))
        return grads * jnp.minimum(inverse_norm, 1.0 / KERAS_EPSILON)
    return grads / jnp.maximum(jnp.linalg.norm(grads), KERAS_EPSILON)


def _check_normalize(mode: str) -> None:
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {mode!r}")


def _filter_loss(graphdef: nnx.GraphDef, state: nnx.State, layer_name: str, image: jax.Array,
                 filter_index: jax.Array, input_scale: jax.Array) -> jax.Array:
    """Mean activation of one filter over the layer's output without its 2-pixel border."""
    model = nnx.merge(graphdef, state)
    act = Recorder((layer_name,), stop=True).run(model, (image * input_scale)[None])[layer_name]
    # A one-hot contraction, not act[..., filter_index]: under vmap the index is batched and
    # would become a gather whose gradient is a scatter, which is slow on CPU.
    selected = act[:, 2:-2, 2:-2, :] @ jax.nn.one_hot(filter_index, act.shape[-1], dtype=act.dtype)
    return jnp.mean(selected)


def _step(graphdef, state, layer_name, image, filter_index, step_size, input_scale, normalize):
    grads = jax.grad(_filter_loss, argnums=3)(graphdef, state, layer_name, image, filter_index, input_scale)
    return image + step_size * normalize_gradient(grads, normalize)


_jitted_step = jax.jit(_step, static_argnums=(0, 2, 7))  # the book's jitted gradient_ascent_step


@partial(jax.jit, static_argnames=("graphdef", "layer_name", "steps", "unroll", "normalize"))
def _ascend_many(graphdef, state, layer_name, starts, filter_indices, step_size, input_scale, steps, unroll,
                 normalize="pixel"):
    def ascend(start, filter_index):
        return jax.lax.fori_loop(0, steps, lambda _, image: _step(
            graphdef, state, layer_name, image, filter_index, step_size, input_scale, normalize),
            start, unroll=unroll)

    return jax.vmap(ascend)(starts, filter_indices)


def _setup(model, layer_name, filter_indices, image_size, channels, seed, init_range, normalize):
    """Eval-mode split, checked indices and the per-filter start images in book units."""
    _check_normalize(normalize)  # before anything compiles
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    shape = (1, height, width, channels)
    # jnp's default float: float32, or float64 when x64 is on (as the start noise below)
    example = jax.ShapeDtypeStruct(shape, jnp.result_type(float))
    layer_shape = check_layers(model, [layer_name], example, spatial=True)[layer_name]
    if min(layer_shape[1:3]) <= 4:
        raise ValueError(f"layer {layer_name!r} is only {layer_shape[1]}×{layer_shape[2]} at image_size "
                         f"{(height, width)}: nothing is left inside the 2-pixel border the loss excludes; "
                         "use a larger image_size")
    filters = layer_shape[-1]
    indices = np.asarray(filter_indices, dtype=np.int32).reshape(-1)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= filters:
        raise ValueError(f"filter_indices must be in [0, {filters}) for layer {layer_name!r}, "
                         f"got {filter_indices!r}")
    # One key per filter index (not per position), so a filter's start is the same in a batch
    # and alone: that is what lets the vmapped batch equal the one-at-a-time loop.
    key = jax.random.key(seed)
    low, high = init_range
    starts = jnp.stack([jax.random.uniform(jax.random.fold_in(key, int(i)), shape[1:], minval=low, maxval=high)
                        for i in indices])
    return eval_split(model), indices, starts


def visualize_filters(model: Model, layer_name: str, filter_indices: Sequence[int], *,
                      image_size: int | tuple[int, int], channels: int = 3, steps: int = 30,
                      step_size: float = 10.0, seed: int = 0,
                      init_range: tuple[float, float] = (0.4, 0.6), input_scale: float = 255.0,
                      normalize: str = "pixel", chunk_size: int | None = None,
                      unroll: int | bool | None = None) -> np.ndarray:
    """The pattern each filter responds to most, for many filters in one jitted vmapped call.

    Args:
      model: any [Model][jaxvision.models.base.Model]; run in eval mode.
      layer_name: a tapped layer with an (N, H, W, C) output.
      filter_indices: channels of that layer to visualise.
      image_size: int or (height, width) of the generated images.
      channels: input channels of the model.
      steps, step_size: gradient-ascent steps and their length in book units (per pixel, or
        of the whole image with ``normalize="tensor"``).
      seed: start noise; filter ``f`` always starts from the same image for a given seed.
      init_range: the start image is uniform in this range (book units).
      input_scale: the model sees ``image * input_scale`` (see the module docstring).
      normalize: ``"pixel"`` (the book's ``ops.normalize``) or ``"tensor"``; see
        [normalize_gradient][jaxvision.interpret.normalize_gradient].
      chunk_size: filters per vmapped call, to bound memory; default all at once.
      unroll: ``lax.fori_loop``'s ``unroll``. Default: fully unrolled on CPU, where XLA runs
        convolutions inside a loop body several times slower (jax-ml/jax#12868), at the cost
        of a longer compile; rolled on accelerators.

    Returns:
      (len(filter_indices), height, width, channels) float32 images as fed to the model.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Conv2D
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Conv2D(3, 8, 3, activation="relu", rngs=nnx.Rngs(0))])
        >>> visualize_filters(model, "conv2d", [0, 5], image_size=12, steps=3).shape
        (2, 12, 12, 3)
    """
    (graphdef, state), indices, starts = _setup(model, layer_name, filter_indices, image_size,
                                                channels, seed, init_range, normalize)
    chunk = len(indices) if chunk_size is None else min(chunk_size, len(indices))
    pad = -len(indices) % chunk  # pad the last chunk so every call has one shape (one compile)
    indices = np.concatenate([indices, np.repeat(indices[-1:], pad)])
    starts = jnp.concatenate([starts, jnp.repeat(starts[-1:], pad, axis=0)])
    if unroll is None:
        unroll = True if jax.default_backend() == "cpu" else 1
    out = [_ascend_many(graphdef, state, layer_name, starts[i:i + chunk], jnp.asarray(indices[i:i + chunk]),
                        step_size, input_scale, steps, unroll, normalize) for i in range(0, len(indices), chunk)]
    images = np.concatenate([np.asarray(o) for o in out])[:len(indices) - pad]
    return images * np.float32(input_scale)


def visualize_filter_loop(model: Model, layer_name: str, filter_indices: Sequence[int], *,
                          image_size: int | tuple[int, int], channels: int = 3, steps: int = 30,
                          step_size: float = 10.0, seed: int = 0,
                          init_range: tuple[float, float] = (0.4, 0.6),
                          input_scale: float = 255.0, normalize: str = "pixel") -> np.ndarray:
    """Reference for [visualize_filters][jaxvision.interpret.visualize_filters]: the book's Python
    loops, one filter at a time
    and one jitted ascent step per iteration. Same arguments and result."""
    (graphdef, state), indices, starts = _setup(model, layer_name, filter_indices, image_size,
                                                channels, seed, init_range, normalize)
    images = []
    for filter_index, image in zip(indices, starts):
        for _ in range(steps):
            image = _jitted_step(graphdef, state, layer_name, image, jnp.int32(filter_index),
                                 step_size, input_scale, normalize)
        images.append(np.asarray(image))
    return np.stack(images) * np.float32(input_scale)


def deprocess_image(image: np.ndarray, crop: int = 25) -> np.ndarray:
    """Listing 10.15: standardise, map to mean 128 / std 64, clip to [0, 255], crop ``crop``
    pixels from each side (the border the loss ignores is noisy), cast to uint8.

    Examples:
        >>> import numpy as np
        >>> deprocess_image(np.random.default_rng(0).normal(size=(60, 60, 3))).shape
        (10, 10, 3)
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3 or min(image.shape[:2]) <= 2 * crop:
        raise ValueError(f"deprocess_image: expected a (height, width, channels) image larger than "
                         f"2 * crop = {2 * crop} pixels, got shape {image.shape}")
    std = image.std()
    image = (image - image.mean()) / (std if std > 0 else 1.0) * 64 + 128
    image = np.clip(image, 0, 255)
    if crop:
        image = image[crop:-crop, crop:-crop]
    return image.astype(np.uint8)
