"""Scores for attribution maps: do they point at what the model uses (deletion, insertion,
ROAD), and do they depend on the model at all (model randomisation)?

* Deletion and insertion (Petsiuk et al., "RISE", BMVC 2018): pixels are taken in the order of
  the map (highest first) and, in ``steps`` equal steps, deleted (set to ``baseline``) from the
  image, or inserted into a blurred copy (Gaussian, σ 5, 11 taps, zero-padded, as RISE's code).
  The class score after each step traces a curve over the fraction of pixels changed
  ``t ∈ [0, 1]``; its area (trapezoid) is the score: low for deletion, high for insertion is
  faithful. All ``steps + 1`` perturbed batches run as one program, ``chunk`` at a time.
* ROAD, "remove and debias" (Rong et al., ICML 2022), as pytorch-grad-cam computes it: at
  percentile ``p`` of the map, the most relevant pixels (``map ≥ percentile(map, p)``, MoRF) or
  the least relevant (``1 − map ≥ percentile(1 − map, p)``, LeRF) are removed and imputed by
  noisy linear interpolation: each removed pixel equals the weighted mean of its 8 neighbours
  (weights 1/6 edge, 1/12 corner, out-of-image neighbours dropped), a sparse linear system solved
  here by conjugate gradients, plus ``noise · N(0, 1)``. The score is ``y(imputed) − y(x)``;
  ``combined`` is the mean over percentiles of ``(LeRF − MoRF) / 2`` (pytorch-grad-cam's
  ``ROADCombined``): higher is more faithful.
* Model randomisation (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018): the
  parameters are re-drawn layer by layer from the top (cascading), and the Spearman rank
  correlation between the map before and after each step is reported. A map that stays
  correlated while the model is destroyed explains the image, not the model.

Maps may be at a layer's resolution (N, h, w), at the input's (N, H, W), or input attributions
(N, H, W, C) (summed over channels); they are resized bilinearly to (H, W).
"""

from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.interpret.activations import as_images, eval_split
from jaxvision.interpret.cams import class_targets, resolve_classes
from jaxvision.interpret.gradcam import class_scores
from jaxvision.models.base import Model, sublayer

NEIGHBOUR_WEIGHTS = np.array([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], np.float32)


def saliency_at_input(saliency, batch: int, size: tuple[int, int]) -> jax.Array:
    """(N, H, W) float32 maps: channels summed, bilinearly resized (half-pixel centres) to ``size``."""
    saliency = jnp.asarray(saliency, jnp.float32)
    if saliency.ndim == 4:
        saliency = saliency.sum(-1)
    if saliency.ndim != 3 or saliency.shape[0] != batch:
        raise ValueError(f"saliency: (N, h, w) or (N, H, W, C) maps expected for N = {batch} images, "
                         f"got shape {saliency.shape}")
    if saliency.shape[1:] == tuple(size):
        return saliency
    return jax.image.resize(saliency, (saliency.shape[0], *size), "linear")


def _gaussian_matrix(size: int, taps: int = 11, sigma: float = 5.0) -> np.ndarray:
    """(size, size) zero-padded 1-D Gaussian blur as a matrix (RISE's ``gkern``)."""
    offsets = np.arange(taps) - taps // 2
    kernel = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    matrix = np.zeros((size, size), np.float32)
    for offset, weight in zip(offsets, kernel):
        matrix += weight * np.eye(size, k=offset, dtype=np.float32)
    return matrix


def blur(images: jax.Array) -> jax.Array:
    """RISE's insertion start: each channel blurred by an 11-tap, σ 5 Gaussian, zero-padded."""
    rows = jnp.asarray(_gaussian_matrix(images.shape[1]), images.dtype)
    cols = jnp.asarray(_gaussian_matrix(images.shape[2]), images.dtype)
    return jnp.einsum("Hh,nhwc,Ww->nHWc", rows, images, cols)


def _single_class(class_index, batch: int) -> jax.Array:
    classes, single = class_targets(class_index, batch)
    if not single:
        raise ValueError("class_index: one class per image (an int or (N,)) for faithfulness scores")
    return classes


def curve_auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled at ``steps + 1`` equally spaced points of [0, 1] (trapezoid).

    Examples:
        >>> float(curve_auc(np.array([1.0, 0.5, 0.0])))
        0.5
    """
    curve = np.asarray(curve)
    return (curve.sum(-1) - (curve[..., 0] + curve[..., -1]) / 2) / (curve.shape[-1] - 1)


@partial(jax.jit, static_argnames=("graphdef", "from_logits", "steps", "chunk"))
def _curves(graphdef, state, images, saliency, classes, baseline, from_logits, steps, chunk):
    model = nnx.merge(graphdef, state)
    n, h, w, _ = images.shape
    classes = resolve_classes(model(images), classes, from_logits)[:, 0]
    order = jnp.argsort(-saliency.reshape(n, h * w), axis=1, stable=True)
    rank = jnp.zeros_like(order).at[jnp.arange(n)[:, None], order].set(jnp.arange(h * w)).reshape(n, h, w, 1)
    blurred = blur(images)

    def scores(t):  # t: (S,) steps → (S, 2, N); the 2·S·N perturbed images are one batch
        changed = (rank < jnp.round(t * (h * w) / steps).astype(rank.dtype)[:, None, None, None, None])
        both = jnp.stack([jnp.where(changed, baseline, images), jnp.where(changed, images, blurred)], axis=1)
        flat = both.reshape(-1, *images.shape[1:])
        return class_scores(model(flat), jnp.tile(classes, 2 * len(t)), from_logits).reshape(len(t), 2, n)

    chunk = max(1, min(chunk, steps + 1))
    groups = -(-(steps + 1) // chunk)
    t = jnp.minimum(jnp.arange(groups * chunk), steps).reshape(groups, chunk)
    return jax.lax.map(scores, t).reshape(groups * chunk, 2, n)[:steps + 1]  # (T, 2, N)


def deletion_insertion(model: Model, images, saliency, class_index=None, *, steps: int = 32, baseline=0.0,
                       chunk: int = 8, from_logits: bool = False) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and their areas (RISE).

    Args:
      model: any [Model][jaxvision.models.base.Model]; run in eval mode.
      images: (N, H, W, C) batch in the model's input format.
      saliency: (N, h, w) maps or (N, H, W, C) attributions; higher is more important.
      class_index: the class each map explains (an int or (N,)); default each image's top class.
      steps: the curve has ``steps + 1`` points, ``round(t · H·W / steps)`` pixels changed at step t.
      baseline: the value deleted pixels take (broadcastable to the images), in the model's
        input format.
      chunk: perturbed batches per vmapped forward pass: the memory bound.
      from_logits: a single-output model returns logits rather than sigmoid probabilities.

    Returns:
      ``{"deletion": (N, steps + 1), "insertion": (N, steps + 1), "deletion_auc": (N,),
      "insertion_auc": (N,)}``: the class score along each curve (a probability for a softmax
      model) and the areas.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Flatten(), Dense(4, 1, rngs=nnx.Rngs(0))])
        >>> model.dense.kernel[...] = jnp.array([[4.0], [3.0], [2.0], [1.0]])  # y = Σ w x
        >>> scores = deletion_insertion(model, jnp.ones((1, 2, 2, 1)), jnp.array([[[4.0, 3.0], [2.0, 1.0]]]),
        ...                             steps=4, from_logits=True)
        >>> scores["deletion"].tolist(), scores["deletion_auc"].tolist()
        ([[10.0, 6.0, 3.0, 1.0, 0.0]], [3.75])
    """
    images = as_images(images)
    classes = _single_class(class_index, images.shape[0])
    saliency = saliency_at_input(saliency, images.shape[0], images.shape[1:3])
    baseline = jnp.broadcast_to(jnp.asarray(baseline, images.dtype), images.shape)
    curves = np.asarray(_curves(*eval_split(model), images, saliency, classes, baseline, from_logits, int(steps),
                                int(chunk))).transpose(1, 2, 0)
    return {"deletion": curves[0], "insertion": curves[1], "deletion_auc": curve_auc(curves[0]),
            "insertion_auc": curve_auc(curves[1])}


def _neighbour_sum(x: jax.Array) -> jax.Array:
    """Σ_j w_ij x_j over the 8 neighbours of each (h, w) position, zero outside; x (H, W, C)."""
    kernel = jnp.asarray(NEIGHBOUR_WEIGHTS, x.dtype)[:, :, None, None] * jnp.ones((1, 1, 1, x.shape[-1]), x.dtype)
    return jax.lax.conv_general_dilated(x[None], kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=x.shape[-1])[0]


def linear_impute(image: jax.Array, keep: jax.Array, *, tol: float = 1e-6, maxiter: int = 5000) -> jax.Array:
    """ROAD's linear imputation: removed pixels (``keep == 0``) of an (H, W, C) image become the
    solution of ``D_i x_i − Σ_{j removed} w_ij x_j = Σ_{j kept} w_ij v_j`` (``D_i``: the summed
    weights of the in-image neighbours), i.e. the weighted mean of their neighbours; solved by
    conjugate gradients (the system is symmetric positive definite where every removed region
    touches a kept pixel).

    Examples:
        >>> import jax.numpy as jnp
        >>> image = jnp.arange(9.0).reshape(3, 3, 1)  # a linear ramp is its own interpolation
        >>> keep = jnp.ones((3, 3)).at[1, 1].set(0)
        >>> float(linear_impute(image, keep)[1, 1, 0])
        4.0
    """
    removed = (1 - keep)[..., None].astype(image.dtype)
    degree = _neighbour_sum(jnp.ones_like(image))

    def operator(u):
        return removed * (degree * u - _neighbour_sum(removed * u))

    rhs = removed * _neighbour_sum((1 - removed) * image)
    solution, _ = jax.scipy.sparse.linalg.cg(operator, rhs, tol=tol, maxiter=maxiter)
    return jnp.where(removed > 0, solution, image)


@partial(jax.jit, static_argnames=("graphdef", "from_logits"))
def _road(graphdef, state, images, saliency, classes, percentiles, noise, key, from_logits):
    model = nnx.merge(graphdef, state)
    outputs = model(images)
    classes = resolve_classes(outputs, classes, from_logits)[:, 0]
    score = class_scores(outputs, classes, from_logits)

    def removed_scores(maps, p):  # maps (N, H, W), one percentile → (N,)
        keep = maps < jax.vmap(lambda m: jnp.percentile(m, p))(maps)[:, None, None]
        imputed = jax.vmap(linear_impute)(images, keep)
        noisy = imputed + noise * jax.random.normal(jax.random.fold_in(key, p), images.shape, images.dtype)
        imputed = jnp.where(keep[..., None], images, noisy)
        return class_scores(model(imputed), classes, from_logits) - score

    morf = jax.lax.map(lambda p: removed_scores(saliency, p), percentiles)
    lerf = jax.lax.map(lambda p: removed_scores(1 - saliency, p), percentiles)
    return morf.T, lerf.T


def road(model: Model, images, saliency, class_index=None, *,
         percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90), noise: float = 0.01, seed: int = 0,
         from_logits: bool = False) -> dict[str, np.ndarray]:
    """ROAD scores (remove and debias) as pytorch-grad-cam's ``ROADMostRelevantFirst``,
    ``ROADLeastRelevantFirst`` and ``ROADCombined`` compute them.

    Args:
      model, images, class_index, from_logits: as in
        [deletion_insertion][jaxvision.interpret.faithfulness.deletion_insertion].
      saliency: (N, h, w) maps or (N, H, W, C) attributions; pytorch-grad-cam's maps are in
        [0, 1] (LeRF ranks by ``1 − map``).
      percentiles: the removal thresholds ``p``; MoRF removes the pixels at or above the
        p-th percentile of the map, LeRF those at or above the p-th percentile of ``1 − map``.
      noise: standard deviation of the Gaussian noise added to imputed pixels (absolute, in
        the model's input units; pytorch-grad-cam's 0.01).
      seed: the noise's ``PRNGKey``.

    Returns:
      ``{"morf": (N, P), "lerf": (N, P), "combined": (N,)}``: score changes ``y(imputed) − y(x)``
      per percentile and ``mean_p (LeRF − MoRF) / 2``.
    """
    images = as_images(images)
    classes = _single_class(class_index, images.shape[0])
    saliency = saliency_at_input(saliency, images.shape[0], images.shape[1:3])
    morf, lerf = (np.asarray(a) for a in _road(*eval_split(model), images, saliency, classes,
                                               jnp.asarray(percentiles, jnp.float32), jnp.float32(noise),
                                               jax.random.PRNGKey(seed), from_logits))
    return {"morf": morf, "lerf": lerf, "combined": ((lerf - morf) / 2).mean(axis=1)}


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ of two maps (flattened), ties ranked by their mean rank; nan if either is constant.

    Examples:
        >>> round(rank_correlation(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 20.0, 40.0])), 6)  # 3 / √10
        0.948683
    """
    def ranks(x):
        x = np.asarray(x, np.float64).ravel()
        _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return (first + (counts - 1) / 2)[inverse]

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def parameter_layers(model: Model, input_shape: tuple[int, ...]) -> list[str]:
    """Tapped layers (nested paths too) that hold parameters themselves, in forward order.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Conv2D, Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> parameter_layers(Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), Flatten(), Dense(16, 2, rngs=nnx.Rngs(0))]),
        ...                  (1, 4, 4, 3))
        ['conv2d', 'dense']
    """
    names = []
    for name in model.layer_shapes(tuple(input_shape)):
        layer = sublayer(model, name)
        if isinstance(layer, Model) or layer is None:
            continue
        if jax.tree.leaves(nnx.state(layer, nnx.Param)):
            names.append(name)
    return names


def randomized_copy(model: Model, layers: Sequence[str], seed: int = 0) -> Model:
    """A copy of ``model`` whose ``layers``' parameters are re-drawn from a normal distribution
    with each parameter array's own mean and standard deviation (a zero-initialised bias or a
    unit BatchNorm scale stays as it is, as re-initialisation would leave it); ``model`` is unchanged."""
    copy = nnx.clone(model)  # its own Variables: merge(split(model)) would share them
    key = jax.random.PRNGKey(seed)
    for i, name in enumerate(layers):
        for j, (_, param) in enumerate(nnx.iter_graph(sublayer(copy, name))):
            if isinstance(param, nnx.Param):
                value = param[...]
                noise = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), j), value.shape)
                param[...] = (value.mean() + value.std() * noise).astype(value.dtype)
    return copy


def randomization_sanity_check(model: Model, images, explain: Callable[[Model, np.ndarray], np.ndarray], *,
                               layers: Sequence[str] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Cascading model-randomisation check (Adebayo et al. 2018).

    Args:
      model: any [Model][jaxvision.models.base.Model]; it is not modified.
      images: (N, H, W, C) batch.
      explain: ``explain(model, images)`` → (N, ...) maps, e.g.
        ``lambda m, x: grad_cam(m, x, "conv_pw_13_relu", class_index=386)`` (fix the class:
        a randomised model predicts another one).
      layers: layers to randomise, top first; default every layer holding parameters, from
        the output down (`jaxvision.interpret.faithfulness.parameter_layers`).
      seed: the re-draws' ``PRNGKey``.

    Returns:
      ``{layer: (N,) Spearman ρ}``: the correlation of each image's map with its map once every
      layer from the top down to ``layer`` is randomised, in cascade order.
    """
    images = as_images(images)
    order = list(layers) if layers is not None else parameter_layers(model, images.shape)[::-1]
    original = np.asarray(explain(model, images))
    result = {}
    for depth, name in enumerate(order, 1):
        maps = np.asarray(explain(randomized_copy(model, order[:depth], seed), images))
        result[name] = np.array([rank_correlation(a, b) for a, b in zip(original, maps)])
    return result
