"""The class-activation-map family beyond Grad-CAM, on any tapped layer of any jaxvision model.

Every function here has ``jaxvision.interpret.gradcam.grad_cam``'s signature
``(model, images, layer_name=None, class_index=None, *, from_logits=False)`` and returns maps
at the layer's resolution, ReLU'd and divided by their maximum (an all-zero map stays zero).
``layer_name`` may be a nested path (``"backbone/conv_pw_13_relu"``). ``class_index`` is an
int, one class per image (N,), or several classes per image (N, K); with (N, K) the maps are
(N, K, h, w), computed in one program: one forward pass, K backward passes vmapped.

Notation: ``A`` is the layer's activation (h, w, C) for one image, ``y`` the class score (the
model's output for the class; the signed logit for a single sigmoid output, as in
``jaxvision.interpret.gradcam``), ``g = ∂y/∂A``. Each method forms
``cam = ReLU(Σ_c w_c A_c)`` (or an element-wise variant) with:

* Grad-CAM++ (Chattopadhay et al. 2018, WACV): ``w_c = Σ_ij ReLU(g_cij) α_cij``,
  ``α = g² / (2 g² + Σ_ij A_cij · g³)`` (the exponential-score closed form, where ``g = 0``
  gives ``α = 0``), as pytorch-grad-cam computes it.
* XGrad-CAM (Fu et al. 2020, BMVC): ``w_c = Σ_ij g_cij A_cij / Σ_ij A_cij``.
* HiResCAM (Draelos & Carin 2020): ``cam_ij = Σ_c g_cij A_cij`` (no spatial pooling of ``g``).
* LayerCAM (Jiang et al. 2021, TIP): ``cam_ij = Σ_c ReLU(g_cij) A_cij``.
* EigenCAM (Muhammad & Yeasin 2020): the activations (hw × C, centred over positions)
  projected on their first right singular vector; class independent; the sign is chosen so
  that the projection correlates positively with the channel-summed activation.
* Score-CAM (Wang et al. 2020, CVPRW): each channel, upsampled to the input (bilinear, corners
  aligned, as ``torch.nn.UpsamplingBilinear2d``) and min-max normalised, masks the input;
  ``w = softmax_c(y(x ⊙ mask_c))``. The C masked forward passes run as one program, vmapped in
  chunks of ``chunk`` channels (a memory bound), not a Python loop.
* Ablation-CAM (Desai & Ramaswamy 2020, WACV): ``w_c = (y − y_c) / y`` where ``y_c`` is the
  score with channel ``c`` of the layer set to zero; chunked like Score-CAM.

pytorch-grad-cam (Gildenblat et al.) is the reference for all of them
(``tests/interpret/make_attribution_fixtures.py``); its maps equal these after its min-max scaling.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.interpret.activations import eval_split
from jaxvision.interpret.gradcam import _prepare, class_scores
from jaxvision.models.base import Model


def class_targets(class_index, batch: int) -> tuple[jax.Array, bool]:
    """``class_index`` as an (N, K) int32 array (-1: the top class) and whether the caller asked
    for one class per image (then the maps drop the K axis).

    Examples:
        >>> class_targets(None, 2)
        (Array([[-1],
               [-1]], dtype=int32), True)
        >>> class_targets([[3, 5]], 2)[0].tolist()
        [[3, 5], [3, 5]]
    """
    index = np.asarray(-1 if class_index is None else class_index)
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"class_index: integers expected, got {index.dtype} values {index.tolist()}")
    if index.ndim > 2:
        raise ValueError(f"class_index: an int, one per image (N,) or several per image (N, K); got shape {index.shape}")
    single = index.ndim < 2
    try:
        index = np.broadcast_to(index[:, None] if index.ndim == 1 else index, (batch, 1 if single else index.shape[-1]))
    except ValueError:
        raise ValueError(f"class_index: shape {np.shape(class_index)} does not fit {batch} image(s)") from None
    return jnp.asarray(index, jnp.int32), single


def resolve_classes(outputs: jax.Array, classes: jax.Array, from_logits: bool) -> jax.Array:
    """(N, K) classes with -1 replaced by each image's predicted class (for one sigmoid output:
    1 where p ≥ 0.5, or the logit ≥ 0 with ``from_logits``)."""
    if outputs.shape[-1] > 1:
        predicted = jnp.argmax(outputs, axis=-1)
    else:
        predicted = (outputs[:, 0] >= (0 if from_logits else 0.5)).astype(classes.dtype)
    return jnp.where(classes < 0, predicted[:, None], classes)


def layer_forward(model: Model, images: jax.Array, layer_name: str,
                  replace: Callable[[jax.Array], jax.Array]) -> tuple[jax.Array, jax.Array]:
    """The model's output when the layer's activation ``A`` is replaced by ``replace(A)``, and ``A``.
    With a ``replace`` that ignores ``A``, jit drops the layers before it (dead code)."""
    seen = {}

    def tap(name: str, value: jax.Array) -> jax.Array:
        if name == layer_name:
            seen[name] = value
            return replace(value)
        return value

    return model.forward(images, tap), seen[layer_name]


def per_class_scores(outputs: jax.Array, classes: jax.Array, from_logits: bool) -> jax.Array:
    """(N, K) class scores for (N, K) classes."""
    return jax.vmap(lambda index: class_scores(outputs, index, from_logits), in_axes=1, out_axes=1)(classes)


def _layer_gradients(model, images, classes, layer_name, from_logits):
    """A (N, h, w, C), ∂y/∂A (N, K, h, w, C) and y (N, K): one forward, K vmapped backwards."""
    def forward(delta):
        return layer_forward(model, images, layer_name, lambda a: a + delta)

    shape = jax.eval_shape(lambda: forward(0.0)[1])
    outputs, pullback, activation = jax.vjp(forward, jnp.zeros(shape.shape, shape.dtype), has_aux=True)

    def per_class(index):
        score, score_pullback = jax.vjp(lambda o: class_scores(o, index, from_logits), outputs)
        return pullback(score_pullback(jnp.ones_like(score))[0])[0], score

    grads, scores = jax.vmap(per_class, in_axes=1, out_axes=1)(classes)
    return activation, grads, scores


def normalize_maps(cam: jax.Array) -> jax.Array:
    """ReLU, then each map (last two axes) divided by its maximum; an all-zero map stays zero.

    Examples:
        >>> import jax.numpy as jnp
        >>> normalize_maps(jnp.array([[[-1.0, 2.0], [1.0, 4.0]], [[-1.0, 0.0], [0.0, -3.0]]])).tolist()
        [[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]
    """
    cam = jax.nn.relu(cam)
    peak = cam.max(axis=(-2, -1), keepdims=True)
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1), 0)


def _weighted(activation, weights):
    """Σ_c w_c A_c: A (N, h, w, C), w (N, K, C) → (N, K, h, w)."""
    return jnp.einsum("nhwc,nkc->nkhw", activation, weights)


def _grad_cam_pp(activation, grads):
    g2 = grads ** 2
    total = activation.sum(axis=(1, 2))[:, None, None, None, :]  # Σ_ij A_cij, (N, 1, 1, 1, C)
    alpha = jnp.where(grads != 0, g2 / (2 * g2 + total * g2 * grads + 1e-6), 0)
    return _weighted(activation, (jax.nn.relu(grads) * alpha).sum(axis=(2, 3)))


def _xgrad_cam(activation, grads):
    total = activation.sum(axis=(1, 2))[:, None, :]
    return _weighted(activation, (grads * activation[:, None]).sum(axis=(2, 3)) / (total + 1e-7))


def _hires_cam(activation, grads):
    return jnp.einsum("nhwc,nkhwc->nkhw", activation, grads)


def _layer_cam(activation, grads):
    return jnp.einsum("nhwc,nkhwc->nkhw", activation, jax.nn.relu(grads))


GRADIENT_CAMS = {"grad_cam_plus_plus": _grad_cam_pp, "xgrad_cam": _xgrad_cam, "hires_cam": _hires_cam,
                 "layer_cam": _layer_cam}


@partial(jax.jit, static_argnames=("graphdef", "layer_name", "from_logits", "method"))
def _gradient_cam(graphdef, state, images, classes, layer_name, from_logits, method):
    activation, grads, _ = _layer_gradients(nnx.merge(graphdef, state), images, classes, layer_name, from_logits)
    return normalize_maps(GRADIENT_CAMS[method](activation, grads))


def eigen_projection(activation: jax.Array) -> jax.Array:
    """(N, h, w, C) → (N, h, w): the centred activations' projection on their first principal
    direction, signed to correlate positively with the channel sum.

    Examples:
        >>> import jax.numpy as jnp
        >>> a = jnp.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None] * jnp.array([1.0, 2.0])
        >>> [round(v, 4) for v in eigen_projection(a).ravel().tolist()]  # rank one: centred position · |(1, 2)|
        [-3.3541, -1.118, 1.118, 3.3541]
    """
    n, h, w, c = activation.shape
    flat = activation.reshape(n, h * w, c)
    centred = flat - flat.mean(axis=1, keepdims=True)
    _, _, vt = jnp.linalg.svd(centred, full_matrices=False)
    projection = jnp.einsum("npc,nc->np", centred, vt[:, 0])
    sign = jnp.where(jnp.einsum("np,np->n", projection, flat.sum(-1)) < 0, -1.0, 1.0)
    return (projection * sign[:, None]).reshape(n, h, w)


@partial(jax.jit, static_argnames=("graphdef", "layer_name"))
def _eigen_cam(graphdef, state, images, layer_name):
    _, activation = layer_forward(nnx.merge(graphdef, state), images, layer_name, lambda a: a)
    return normalize_maps(eigen_projection(activation.astype(jnp.float32)))


def _interpolation_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) bilinear weights with corners aligned (``align_corners=True``)."""
    position = np.arange(size_out) * ((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
    low = np.clip(np.floor(position).astype(int), 0, size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = position - low
    matrix = np.zeros((size_out, size_in), np.float64)
    np.add.at(matrix, (np.arange(size_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(size_out), high), frac)
    return matrix.astype(np.float32)


def upsample_aligned(maps: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resize of (..., h, w, C) maps to ``size`` with corners aligned, as
    ``torch.nn.UpsamplingBilinear2d`` (Score-CAM's masks in pytorch-grad-cam).

    Examples:
        >>> import jax.numpy as jnp
        >>> upsample_aligned(jnp.array([[0.0, 1.0]])[..., None], (1, 3))[..., 0].tolist()
        [[0.0, 0.5, 1.0]]
    """
    rows = jnp.asarray(_interpolation_matrix(maps.shape[-3], size[0]))
    cols = jnp.asarray(_interpolation_matrix(maps.shape[-2], size[1]))
    return jnp.einsum("Hh,...hwc,Ww->...HWc", rows, maps, cols)


def _channel_scores(score_of_channel, channels: int, chunk: int):
    """(C, N, K) scores, ``score_of_channel(c)`` vmapped ``chunk`` channels at a time."""
    return jax.lax.map(score_of_channel, jnp.arange(channels), batch_size=min(chunk, channels))


@partial(jax.jit, static_argnames=("graphdef", "layer_name", "from_logits", "chunk"))
def _score_cam(graphdef, state, images, classes, layer_name, from_logits, chunk):
    model = nnx.merge(graphdef, state)
    outputs, activation = layer_forward(model, images, layer_name, lambda a: a)
    classes = resolve_classes(outputs, classes, from_logits)
    upsampled = upsample_aligned(activation.astype(jnp.float32), images.shape[1:3])
    low, high = upsampled.min(axis=(1, 2), keepdims=True), upsampled.max(axis=(1, 2), keepdims=True)
    masks = (upsampled - low) / (high - low + 1e-8)  # (N, H, W, C)

    def masked_scores(c):
        masked = images * masks[..., c][..., None].astype(images.dtype)
        return per_class_scores(model(masked), classes, from_logits)

    scores = _channel_scores(masked_scores, activation.shape[-1], chunk)  # (C, N, K)
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=0).transpose(1, 2, 0)
    return normalize_maps(_weighted(activation.astype(jnp.float32), weights))


@partial(jax.jit, static_argnames=("graphdef", "layer_name", "from_logits", "chunk"))
def _ablation_cam(graphdef, state, images, classes, layer_name, from_logits, chunk):
    model = nnx.merge(graphdef, state)
    outputs, activation = layer_forward(model, images, layer_name, lambda a: a)
    classes = resolve_classes(outputs, classes, from_logits)
    score = per_class_scores(outputs, classes, from_logits)
    keep = jnp.ones(activation.shape[-1], activation.dtype)

    def ablated_scores(c):
        ablated = activation * keep.at[c].set(0)
        return per_class_scores(layer_forward(model, images, layer_name, lambda _: ablated)[0], classes, from_logits)

    ablated = _channel_scores(ablated_scores, activation.shape[-1], chunk).transpose(1, 2, 0)  # (N, K, C)
    weights = (score[..., None] - ablated) / score[..., None]
    return normalize_maps(_weighted(activation.astype(jnp.float32), weights.astype(jnp.float32)))


def _result(maps: jax.Array, single: bool) -> np.ndarray:
    maps = np.asarray(maps)
    return maps[:, 0] if single else maps


def _gradient_maps(model, images, layer_name, class_index, from_logits, method) -> np.ndarray:
    images, _, layer_name = _prepare(model, images, layer_name, None)
    classes, single = class_targets(class_index, images.shape[0])
    return _result(_gradient_cam(*eval_split(model), images, classes, layer_name, from_logits, method), single)


def grad_cam_plus_plus(model: Model, images, layer_name: str | None = None, class_index=None, *,
                       from_logits: bool = False) -> np.ndarray:
    """Grad-CAM++: ``w_c = Σ_ij ReLU(g_cij) α_cij``, ``α = g² / (2 g² + Σ_ij A_cij · g³)``
    (Chattopadhay et al., WACV 2018), ``cam = ReLU(Σ_c w_c A_c)``.

    Args:
      model: any [Model][jaxvision.models.base.Model]; run in eval mode.
      images: (N, H, W, C) batch in the model's input format.
      layer_name: a tapped layer (nested paths too) with an (N, h, w, C) output; default
        [default_layer][jaxvision.interpret.gradcam.default_layer].
      class_index: an int, one class per image (N,), or K classes per image (N, K); -1 or
        ``None`` is the image's top class.
      from_logits: a single-output model returns logits rather than sigmoid probabilities.

    Returns:
      (N, h, w) maps in [0, 1], or (N, K, h, w) for an (N, K) ``class_index``.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Conv2D, Dense, GlobalAveragePooling2D
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Conv2D(3, 4, 3, activation="relu", rngs=nnx.Rngs(0)), GlobalAveragePooling2D(),
        ...                     Dense(4, 3, rngs=nnx.Rngs(1))])
        >>> grad_cam_plus_plus(model, jnp.ones((2, 8, 8, 3)), "conv2d", [[0, 2]]).shape
        (2, 2, 6, 6)
    """
    return _gradient_maps(model, images, layer_name, class_index, from_logits, "grad_cam_plus_plus")


def xgrad_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
              from_logits: bool = False) -> np.ndarray:
    """XGrad-CAM: ``w_c = Σ_ij g_cij A_cij / Σ_ij A_cij`` (Fu et al., BMVC 2020),
    ``cam = ReLU(Σ_c w_c A_c)``. Arguments and result as
    [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus]."""
    return _gradient_maps(model, images, layer_name, class_index, from_logits, "xgrad_cam")


def hires_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
              from_logits: bool = False) -> np.ndarray:
    """HiResCAM: ``cam_ij = ReLU(Σ_c g_cij A_cij)``, the gradient not averaged over positions,
    so the map is the score's own first-order decomposition (Draelos & Carin 2020). Arguments
    and result as [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus]."""
    return _gradient_maps(model, images, layer_name, class_index, from_logits, "hires_cam")


def layer_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
              from_logits: bool = False) -> np.ndarray:
    """LayerCAM: ``cam_ij = ReLU(Σ_c ReLU(g_cij) A_cij)`` (Jiang et al., IEEE TIP 2021).
    Arguments and result as [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus]."""
    return _gradient_maps(model, images, layer_name, class_index, from_logits, "layer_cam")


def eigen_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
              from_logits: bool = False) -> np.ndarray:
    """EigenCAM: the layer's activations projected on their first principal component
    (Muhammad & Yeasin 2020), see `jaxvision.interpret.cams.eigen_projection`.
    No gradient and no class: ``class_index`` only sets the result's layout (the same map
    repeated over K) and ``from_logits`` is unused. Otherwise as
    [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus]."""
    images, _, layer_name = _prepare(model, images, layer_name, None)
    classes, single = class_targets(class_index, images.shape[0])
    maps = _eigen_cam(*eval_split(model), images, layer_name)
    return _result(jnp.broadcast_to(maps[:, None], (maps.shape[0], classes.shape[1], *maps.shape[1:])), single)


def score_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
              from_logits: bool = False, chunk: int = 32) -> np.ndarray:
    """Score-CAM: ``w = softmax_c(y(x ⊙ m_c))`` over the C masks ``m_c`` (channel ``c``
    upsampled to the input with corners aligned and min-max normalised), ``cam = ReLU(Σ_c w_c
    A_c)`` (Wang et al., CVPR workshops 2020). All N·C masked forward passes are one jitted
    program, ``chunk`` channels (× N images) vmapped at a time. Other arguments and the result
    as [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus].

    Args:
      chunk: channels per vmapped batch of masked forward passes: the memory bound.
    """
    images, _, layer_name = _prepare(model, images, layer_name, None)
    classes, single = class_targets(class_index, images.shape[0])
    return _result(_score_cam(*eval_split(model), images, classes, layer_name, from_logits, int(chunk)), single)


def ablation_cam(model: Model, images, layer_name: str | None = None, class_index=None, *,
                 from_logits: bool = False, chunk: int = 32) -> np.ndarray:
    """Ablation-CAM: ``w_c = (y − y_c) / y`` with ``y_c`` the score when channel ``c`` of the
    layer is set to zero (Desai & Ramaswamy, WACV 2020), ``cam = ReLU(Σ_c w_c A_c)``. The
    layers before ``layer_name`` run once; only the rest of the model is re-run, ``chunk``
    channels (× N images) vmapped at a time. pytorch-grad-cam also ablates to zero when the
    layer's minimum is zero (after a ReLU) and to ``min − 1e7`` otherwise; here it is always
    zero, the paper's choice. Other arguments and the result as
    [grad_cam_plus_plus][jaxvision.interpret.cams.grad_cam_plus_plus].

    Args:
      chunk: channels per vmapped batch of ablated forward passes: the memory bound.
    """
    images, _, layer_name = _prepare(model, images, layer_name, None)
    classes, single = class_targets(class_index, images.shape[0])
    return _result(_ablation_cam(*eval_split(model), images, classes, layer_name, from_logits, int(chunk)), single)
