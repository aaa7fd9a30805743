"""Input attributions: which pixels move a class score, for any jaxvision model.

All functions take ``(model, images, class_index=None, *, from_logits=False, ...)`` like the
CAMs in [cams][jaxvision.interpret.cams] (``class_index``: an int, one per image (N,), or K per
image (N, K); -1 or ``None`` is the image's top class) and return attributions shaped like the
images, (N, H, W, C), or (N, K, H, W, C) for K classes. Everything is one jitted program: the
classes are vmapped backward passes of one forward pass, and path steps, noise samples and
occlusion windows are stacked into the batch ``chunk`` at a time (a memory bound) and summed
chunk after chunk.
The class of "top class" is fixed at the unperturbed image, so every path point or noisy copy
explains the same class.

* Gradients (Simonyan et al. 2014): ``∂y/∂x``. Gradient × input: ``x ⊙ ∂y/∂x``.
* Integrated gradients (Sundararajan et al., ICML 2017): ``(x − x') ⊙ Σ_i w_i ∂y/∂x(x' + α_i
  (x − x'))`` for a baseline ``x'``, with Captum's rules for (α_i, w_i): ``"riemann_left"``,
  ``"riemann_right"``, ``"riemann_middle"``, ``"riemann_trapezoid"`` and ``"gausslegendre"``
  (the default; Captum's trapezoid weights add up to 1 − 1/n, not 1, reproduced). Completeness:
  ``Σ attributions = y(x) − y(x')`` up to the quadrature error,
  see [completeness_error][jaxvision.interpret.attributions.completeness_error].
* SmoothGrad (Smilkov et al. 2017): the mean of any of these over noisy copies ``x + ε``,
  ``ε ~ N(0, σ²)``, ``σ = noise_level · (max x − min x)`` per image; SmoothGrad² (Adebayo et al.
  2018, "VarGrad"'s sibling in Captum's ``NoiseTunnel``) is the mean of the squares.
* Guided backpropagation (Springenberg et al., ICLR workshop 2015): gradients where every ReLU
  (and ReLU6) passes back only positive gradients where its input was positive. The ReLUs are
  swapped for a ``jax.custom_vjp`` version in a private copy of the model inside the traced
  program; the caller's model is unchanged.
* Occlusion (Zeiler & Fergus, ECCV 2014): for each ``window`` placed every ``stride`` pixels
  (Captum's placement: the last window clipped at the edge), ``y(x) − y(x with the window set
  to baseline)``, averaged over the windows that cover a pixel.

Captum (Kokhlikyan et al. 2020) is the reference (``tests/interpret/make_attribution_fixtures.py``).
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.interpret.activations import as_images, eval_split
from jaxvision.interpret.cams import class_targets, per_class_scores, resolve_classes
from jaxvision.interpret.gradcam import class_scores
from jaxvision.models.base import Model

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
METHODS = ("gradients", "gradient_times_input", "guided_backprop", "integrated_gradients")


def class_gradients(model: Model, images: jax.Array, classes: jax.Array, from_logits: bool):
    """∂y/∂x (N, K, H, W, C) and y (N, K) for (N, K) resolved classes: one forward pass, the K
    backward passes vmapped."""
    outputs, pullback = jax.vjp(model, images)

    def per_class(index):
        score, score_pullback = jax.vjp(lambda o: class_scores(o, index, from_logits), outputs)
        return pullback(score_pullback(jnp.ones_like(score))[0])[0], score

    return jax.vmap(per_class, in_axes=1, out_axes=1)(classes)


def chunked_sum(fn: Callable[[jax.Array], jax.Array], count: int, chunk: int) -> jax.Array:
    """``Σ_{i<count} fn(i)``, evaluated ``chunk`` indices at a time, one chunk after the other:
    ``fn`` takes a vector of indices and returns one value per index (the caller stacks them
    into its batch; the last chunk may be shorter).

    The chunks are an unrolled loop, each one's indices tied to the running total by an
    optimization barrier so that XLA runs them in turn (one chunk's activations in memory at a
    time). Not a ``lax.scan``: XLA:CPU runs the backward convolutions of a loop body more than
    ten times slower than the same convolutions outside one (``bench/bench_attribution.py``).

    Examples:
        >>> import jax.numpy as jnp
        >>> float(chunked_sum(lambda i: i.astype(jnp.float32) ** 2, 10, 4))  # 0² + … + 9²
        285.0
    """
    chunk = max(1, min(chunk, count))
    total = None
    for start in range(0, count, chunk):
        index = jnp.arange(start, min(start + chunk, count))
        if total is not None:
            total, index = jax.lax.optimization_barrier((total, index))
        part = fn(index).sum(0)
        total = part if total is None else total + part
    return total


def stacked(fn: Callable[[jax.Array, jax.Array], jax.Array], inputs: jax.Array, classes: jax.Array) -> jax.Array:
    """``fn`` on (S, N, ...) inputs folded into one (S·N, ...) batch (classes tiled), unfolded
    back to (S, N, ...): one large batch, which XLA runs much faster on CPU than a vmap of
    ``fn`` over S (the batching rule of the pooling gradient in particular)."""
    s, n = inputs.shape[:2]
    out = fn(inputs.reshape(s * n, *inputs.shape[2:]), jnp.tile(classes, (s, 1)))
    return out.reshape(s, n, *out.shape[1:])


def path_rule(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Captum's path points α_i in [0, 1] and step weights w_i for ``steps`` points.

    Examples:
        >>> alphas, weights = path_rule(4, "riemann_trapezoid")
        >>> [round(a, 4) for a in alphas.tolist()], weights.tolist()
        ([0.0, 0.3333, 0.6667, 1.0], [0.125, 0.25, 0.25, 0.125])
        >>> float(path_rule(5)[1].sum())  # Gauss–Legendre weights on [0, 1] add up to 1
        1.0
    """
    if rule not in RULES:
        raise ValueError(f"rule: {rule!r} is not one of {RULES}")
    if steps < (1 if rule == "gausslegendre" else 2):
        raise ValueError(f"steps: {steps} is too few for {rule!r}")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (0.5 * (1 + nodes)).astype(np.float32), (0.5 * weights).astype(np.float32)
    alphas = {"riemann_trapezoid": np.linspace(0, 1, steps), "riemann_left": np.linspace(0, 1 - 1 / steps, steps),
              "riemann_middle": np.linspace(1 / (2 * steps), 1 - 1 / (2 * steps), steps),
              "riemann_right": np.linspace(1 / steps, 1, steps)}[rule]
    weights = np.full(steps, 1 / steps)
    if rule == "riemann_trapezoid":  # Captum's: 1/n with halved ends (not 1/(n − 1)), adding up to 1 − 1/n
        weights[[0, -1]] /= 2
    return alphas.astype(np.float32), weights.astype(np.float32)


@jax.custom_vjp
def _guided_relu(x):
    return jax.nn.relu(x)


_guided_relu.defvjp(lambda x: (jax.nn.relu(x), x), lambda x, g: (jnp.where(x > 0, jax.nn.relu(g), 0),))


@jax.custom_vjp
def _guided_relu6(x):
    return jax.nn.relu6(x)


_guided_relu6.defvjp(lambda x: (jax.nn.relu6(x), x),
                     lambda x, g: (jnp.where((x > 0) & (x < 6), jax.nn.relu(g), 0),))

_GUIDED = {jax.nn.relu: _guided_relu, jax.nn.relu6: _guided_relu6}


def guided_copy(model: Model) -> Model:
    """A copy of ``model`` (sharing its arrays) whose layers' ReLU/ReLU6 activations pass back
    only positive gradients. Layers resolve their activation once (``activation_fn``); only those are
    swapped, so the original model never sees the guided functions."""
    copy = nnx.merge(*nnx.split(model))
    for _, module in nnx.iter_graph(copy):
        if isinstance(module, nnx.Module) and getattr(module, "activation_fn", None) in _GUIDED:
            module.activation_fn = _GUIDED[module.activation_fn]
    return copy


def _attribute(model, images, classes, from_logits, method, baseline, steps, rule, chunk):
    """(N, K, H, W, C) attributions of ``method`` for resolved classes."""
    if method == "guided_backprop":
        model = guided_copy(model)
    if method != "integrated_gradients":
        grads = class_gradients(model, images, classes, from_logits)[0]
        return grads * images[:, None] if method == "gradient_times_input" else grads
    alphas, weights = (jnp.asarray(a, images.dtype) for a in path_rule(steps, rule))
    difference = images - baseline

    def step(i):  # i: (S,) path points
        points = baseline + alphas[i][:, None, None, None, None] * difference
        grads = stacked(lambda x, c: class_gradients(model, x, c, from_logits)[0], points, classes)
        return grads * weights[i][:, None, None, None, None, None]

    return difference[:, None] * chunked_sum(step, steps, chunk)


_STATIC = ("graphdef", "from_logits", "method", "steps", "rule", "chunk")


@partial(jax.jit, static_argnames=_STATIC)
def _attributions(graphdef, state, images, classes, baseline, from_logits, method, steps, rule, chunk):
    model = nnx.merge(graphdef, state)
    classes = resolve_classes(model(images), classes, from_logits)
    return _attribute(model, images, classes, from_logits, method, baseline, steps, rule, chunk)


@partial(jax.jit, static_argnames=(*_STATIC, "samples", "squared"))
def _smooth(graphdef, state, images, classes, baseline, key, noise_level, from_logits, method, steps, rule, chunk,
            samples, squared):
    model = nnx.merge(graphdef, state)
    classes = resolve_classes(model(images), classes, from_logits)
    sigma = noise_level * (images.max(axis=(1, 2, 3), keepdims=True) - images.min(axis=(1, 2, 3), keepdims=True))

    def sample(i):  # i: (S,) noise samples
        noise = jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(key, j), images.shape, images.dtype))(i)
        baselines = jnp.tile(baseline, (len(i), 1, 1, 1))
        attribution = stacked(lambda x, c: _attribute(model, x, c, from_logits, method, baselines, steps, rule, chunk),
                              images + sigma * noise, classes)
        return attribution ** 2 if squared else attribution

    return chunked_sum(sample, samples, chunk) / samples


def _prepare(images, class_index, baseline=0.0):
    images = as_images(images)
    classes, single = class_targets(class_index, images.shape[0])
    try:
        baseline = jnp.broadcast_to(jnp.asarray(baseline, images.dtype), images.shape)
    except ValueError:
        raise ValueError(f"baseline: shape {np.shape(baseline)} does not broadcast to the images' "
                         f"{images.shape}") from None
    return images, classes, single, baseline


def _result(attributions: jax.Array, single: bool) -> np.ndarray:
    attributions = np.asarray(attributions)
    return attributions[:, 0] if single else attributions


def gradients(model: Model, images, class_index=None, *, from_logits: bool = False) -> np.ndarray:
    """Vanilla gradients ``∂y/∂x`` (Simonyan et al. 2014), signed (Captum's ``Saliency`` with
    ``abs=False``; take ``abs`` for its default).

    Args:
      model: any [Model][jaxvision.models.base.Model]; run in eval mode.
      images: (N, H, W, C) batch in the model's input format.
      class_index: an int, one class per image (N,), or K classes per image (N, K); -1 or
        ``None`` is the image's top class.
      from_logits: a single-output model returns logits rather than sigmoid probabilities.

    Returns:
      (N, H, W, C), or (N, K, H, W, C) for an (N, K) ``class_index``.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Flatten(), Dense(12, 3, rngs=nnx.Rngs(0))])
        >>> g = gradients(model, jnp.ones((2, 2, 2, 3)), [[0, 2]])
        >>> g.shape, bool(jnp.allclose(g[0, 1].reshape(-1), model.dense.kernel[:, 2]))
        ((2, 2, 2, 2, 3), True)
    """
    images, classes, single, baseline = _prepare(images, class_index)
    return _result(_attributions(*eval_split(model), images, classes, baseline, from_logits, "gradients", 1,
                                 "gausslegendre", 1), single)


def gradient_times_input(model: Model, images, class_index=None, *, from_logits: bool = False) -> np.ndarray:
    """``x ⊙ ∂y/∂x`` (Shrikumar et al. 2016; Captum's ``InputXGradient``). Arguments and result
    as [gradients][jaxvision.interpret.attributions.gradients]."""
    images, classes, single, baseline = _prepare(images, class_index)
    return _result(_attributions(*eval_split(model), images, classes, baseline, from_logits,
                                 "gradient_times_input", 1, "gausslegendre", 1), single)


def guided_backprop(model: Model, images, class_index=None, *, from_logits: bool = False) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015): gradients through ReLUs (and ReLU6s)
    that pass back ``ReLU(g)`` where their input was positive (Captum's ``GuidedBackprop``,
    which guides ``torch.nn.ReLU`` modules). Arguments and result as
    [gradients][jaxvision.interpret.attributions.gradients]; ``model`` is not modified."""
    images, classes, single, baseline = _prepare(images, class_index)
    return _result(_attributions(*eval_split(model), images, classes, baseline, from_logits, "guided_backprop", 1,
                                 "gausslegendre", 1), single)


def integrated_gradients(model: Model, images, class_index=None, *, baseline=0.0, steps: int = 50,
                         rule: str = "gausslegendre", chunk: int = 16, from_logits: bool = False) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017): ``(x − x') ⊙ Σ_i w_i ∂y/∂x(x' + α_i (x − x'))``.

    Args:
      model, images, class_index, from_logits: as [gradients][jaxvision.interpret.attributions.gradients].
      baseline: ``x'``: a number or an array broadcastable to the images, in the model's input
        format (0 is black for models that rescale [0, 255] pixels themselves).
      steps: path points.
      rule: Captum's quadrature: ``"gausslegendre"`` (default), ``"riemann_trapezoid"``,
        ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``.
      chunk: path points per vmapped batch of backward passes: the memory bound.

    Returns:
      (N, H, W, C), or (N, K, H, W, C) for an (N, K) ``class_index``; see
      [completeness_error][jaxvision.interpret.attributions.completeness_error].

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Flatten(), Dense(12, 3, activation="softmax", rngs=nnx.Rngs(0))])
        >>> x = jnp.linspace(0, 1, 24).reshape(2, 2, 2, 3)
        >>> ig = integrated_gradients(model, x, steps=16)
        >>> bool(abs(completeness_error(model, x, ig)).max() < 1e-5)
        True
    """
    images, classes, single, baseline = _prepare(images, class_index, baseline)
    path_rule(steps, rule)
    return _result(_attributions(*eval_split(model), images, classes, baseline, from_logits, "integrated_gradients",
                                 int(steps), rule, int(chunk)), single)


def smooth_grad(model: Model, images, class_index=None, *, method: str = "gradients", samples: int = 50,
                noise_level: float = 0.15, squared: bool = False, seed: int = 0, baseline=0.0, steps: int = 50,
                rule: str = "gausslegendre", chunk: int = 16, from_logits: bool = False) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): ``mean_s a(x + ε_s)`` for an attribution ``a`` and
    ``ε_s ~ N(0, σ²)``, ``σ = noise_level · (max x − min x)`` per image; SmoothGrad²
    (``squared=True``): ``mean_s a(x + ε_s)²``.

    Args:
      model, images, class_index, from_logits: as [gradients][jaxvision.interpret.attributions.gradients].
      method: the attribution smoothed: ``"gradients"``, ``"gradient_times_input"``,
        ``"guided_backprop"`` or ``"integrated_gradients"`` (with ``baseline``, ``steps``, ``rule``).
      samples: noisy copies; sample ``s`` draws its noise from ``fold_in(PRNGKey(seed), s)``.
      noise_level: σ as a fraction of each image's value range (the paper's 10–20%).
      chunk: noisy copies (and path points) per vmapped batch: the memory bound.

    Returns:
      (N, H, W, C), or (N, K, H, W, C) for an (N, K) ``class_index``.
    """
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {METHODS}")
    if samples < 1:
        raise ValueError(f"samples: {samples} must be at least 1")
    images, classes, single, baseline = _prepare(images, class_index, baseline)
    if method == "integrated_gradients":
        path_rule(steps, rule)
    return _result(_smooth(*eval_split(model), images, classes, baseline, jax.random.PRNGKey(seed),
                           jnp.asarray(noise_level, images.dtype), from_logits, method, int(steps), rule, int(chunk),
                           int(samples), bool(squared)), single)


def occlusion_windows(size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(M, H, W) 0/1 masks of the occluding windows in Captum's order and placement: every
    ``stride`` from 0, ``ceil((size − window) / stride) + 1`` per axis, the last clipped.

    Examples:
        >>> occlusion_windows((1, 5), (1, 2), (1, 2))[:, 0].tolist()
        [[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    """
    starts = []
    for axis, (n, w, s) in enumerate(zip(size, window, stride)):
        if not 0 < w <= n or s < 1 or (w < n and s > w):
            raise ValueError(f"occlusion: window {tuple(window)} and stride {tuple(stride)} do not fit images of "
                             f"size {tuple(size)} (need 0 < window ≤ size and 1 ≤ stride ≤ window), axis {axis}")
        starts.append(np.arange(int(np.ceil((n - w) / s)) + 1) * s)
    masks = np.zeros((len(starts[0]), len(starts[1]), *size), np.float32)
    for i, top in enumerate(starts[0]):
        for j, left in enumerate(starts[1]):
            masks[i, j, top:top + window[0], left:left + window[1]] = 1
    return masks.reshape(-1, *size)


@partial(jax.jit, static_argnames=("graphdef", "from_logits", "chunk"))
def _occlusion(graphdef, state, images, classes, baseline, masks, from_logits, chunk):
    model = nnx.merge(graphdef, state)
    outputs = model(images)
    classes = resolve_classes(outputs, classes, from_logits)
    score = per_class_scores(outputs, classes, from_logits)

    def occluded(m):  # m: (S,) windows
        mask = masks[m][:, None, :, :, None].astype(images.dtype)
        changed = stacked(lambda x, c: per_class_scores(model(x), c, from_logits), images * (1 - mask) + baseline * mask,
                          classes)  # (S, N, K)
        return (score - changed)[..., None, None] * masks[m][:, None, None]  # (S, N, K, H, W)

    total = chunked_sum(occluded, masks.shape[0], chunk)
    return (total / masks.sum(0))[..., None] * jnp.ones(images.shape[-1], images.dtype)


def occlusion(model: Model, images, class_index=None, *, window: tuple[int, int] = (8, 8),
              stride: tuple[int, int] = (4, 4), baseline=0.0, chunk: int = 32, from_logits: bool = False) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): the score's drop when a ``window`` (all channels) is
    set to ``baseline``, averaged over the windows covering each pixel (Captum's ``Occlusion``
    with a window spanning the channels).

    Args:
      model, images, class_index, from_logits: as [gradients][jaxvision.interpret.attributions.gradients].
      window: (height, width) of the occluding patch.
      stride: (rows, columns) between patches; at most ``window`` (every pixel is covered).
      baseline: the patch's value(s), broadcastable to the images.
      chunk: windows per vmapped batch of forward passes: the memory bound.

    Returns:
      (N, H, W, C) (the same value in every channel), or (N, K, H, W, C).
    """
    images, classes, single, baseline = _prepare(images, class_index, baseline)
    masks = jnp.asarray(occlusion_windows(images.shape[1:3], tuple(window), tuple(stride)))
    return _result(_occlusion(*eval_split(model), images, classes, baseline, masks, from_logits, int(chunk)), single)


@partial(jax.jit, static_argnames=("graphdef", "from_logits"))
def _completeness(graphdef, state, images, attributions, classes, baseline, from_logits):
    model = nnx.merge(graphdef, state)
    outputs = model(images)
    classes = resolve_classes(outputs, classes, from_logits)
    return attributions.sum(axis=(2, 3, 4)) - (per_class_scores(outputs, classes, from_logits)
                                               - per_class_scores(model(baseline), classes, from_logits))


def completeness_error(model: Model, images, attributions, baseline=0.0, class_index=None, *,
                       from_logits: bool = False) -> np.ndarray:
    """``Σ attributions − (y(x) − y(x'))`` per image (and class): integrated gradients' axiom
    (Captum's ``convergence_delta``); zero up to the quadrature error.

    Args:
      attributions: (N, H, W, C), or (N, K, H, W, C) with an (N, K) ``class_index``.
      baseline, class_index, from_logits: as given to the attribution.

    Returns:
      (N,), or (N, K).
    """
    images, classes, single, baseline = _prepare(images, class_index, baseline)
    attributions = jnp.asarray(attributions)
    attributions = attributions[:, None] if single else attributions
    if attributions.shape != (*classes.shape, *images.shape[1:]):
        raise ValueError(f"attributions: shape {attributions.shape} does not match the images {images.shape} "
                         f"and {classes.shape[1]} class(es) per image")
    return _result(_completeness(*eval_split(model), images, attributions, classes, baseline, from_logits), single)
