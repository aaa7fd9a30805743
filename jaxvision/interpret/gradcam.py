"""Grad-CAM class-activation heatmaps (DLwP listings 10.17–10.25).

The gradient of a class score with respect to a named layer's activations comes from a tap
that adds a zero perturbation ``delta`` at that layer: the gradient with respect to ``delta``
is the gradient with respect to the activation, in one forward and one backward pass of the
whole model. Each channel is weighted by its mean gradient over height and width; the
weighted channel mean, ReLU'd and divided by its maximum, is the heatmap.

Class scores, per image:

* several outputs (softmax or logits): the output for ``class_index``, or the top class;
* a segmentation output (N, H, W, classes): the class's probability summed over the pixels
  predicted as that class (its predicted region, held fixed); default class: the one predicted
  at the most pixels;
* one output (a sigmoid, as the book's binary convnets): the *logit* of the chosen class,
  ``z`` for class 1 and ``-z`` for class 0 (default: the predicted class, p ≥ 0.5 → 1), so
  the class-0 heatmap shows what argues *against* class 1. ``z = log p − log(1 − p)`` is
  recomputed from the probability; where ``p`` rounds to exactly 0 or 1 (``z`` beyond about
  ±17 in float32) the sigmoid's own gradient has already underflowed to zero, the score is
  held constant to keep the gradient finite, and the heatmap is all zeros. A model whose
  single output is already a logit is passed with ``from_logits=True``.
"""

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.interpret.activations import as_images, check_layers, eval_split
from jaxvision.models.base import Model, tapped_forward


def class_scores(outputs: jax.Array, class_index: jax.Array, from_logits: bool = False) -> jax.Array:
    """Per-image score (N,) of class ``class_index`` (N,), where -1 picks the predicted class.

    Examples:
        >>> import jax.numpy as jnp
        >>> class_scores(jnp.array([[0.2, 0.7, 0.1]]), jnp.array([-1]))
        Array([0.7], dtype=float32)
        >>> class_scores(jnp.array([[0.5], [0.5]]), jnp.array([1, 0]))
        Array([ 0., -0.], dtype=float32)
        >>> class_scores(jnp.array([[[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]]]), jnp.array([0]))  # 1 × 3 pixels
        Array([1.5], dtype=float32)
    """
    if outputs.ndim == 4:
        predicted = jnp.argmax(outputs, axis=-1)
        counts = jax.nn.one_hot(predicted, outputs.shape[-1]).sum(axis=(1, 2))
        chosen = jnp.where(class_index < 0, jnp.argmax(counts, axis=-1), class_index)
        region = predicted == chosen[:, None, None]  # no gradient flows through the argmax
        score = jnp.take_along_axis(outputs, chosen[:, None, None, None], axis=-1)[..., 0]
        return jnp.where(region, score, 0).sum(axis=(1, 2))
    if outputs.shape[-1] > 1:
        chosen = jnp.where(class_index < 0, jnp.argmax(outputs, axis=-1), class_index)
        return jnp.take_along_axis(outputs, chosen[:, None], axis=-1)[:, 0]
    if from_logits:
        logit = outputs[:, 0]
        positive = logit >= 0
    else:
        p = outputs[:, 0]
        positive = p >= 0.5
        # Double `where`: the unsafe branch never sees p in {0, 1}, so no inf/nan gradients.
        inside = (p > 0) & (p < 1)
        safe = jnp.where(inside, p, 0.5)
        logit = jnp.where(inside, jnp.log(safe) - jnp.log1p(-safe), 0.0)
    chosen = jnp.where(class_index < 0, positive, class_index == 1)
    return jnp.where(chosen, logit, -logit)


@partial(jax.jit, static_argnames=("graphdef", "layer_name", "from_logits"))
def _score_gradient(graphdef, state, images, class_index, layer_name, from_logits):
    model = nnx.merge(graphdef, state)

    def total_score(delta):
        seen = {}

        def tap(name: str, value: jax.Array) -> jax.Array:
            if name == layer_name:
                value = seen[name] = value + delta
            return value

        # Images are independent in eval mode, so the gradient of the sum is per image.
        scores = class_scores(tapped_forward(model, images, tap), class_index, from_logits)
        return scores.sum(), seen[layer_name]

    shape = jax.eval_shape(lambda: total_score(0.0)[1]).shape
    grads, activation = jax.grad(total_score, has_aux=True)(jnp.zeros(shape, images.dtype))
    return activation, grads


def default_layer(model: Model, input_shape: tuple[int, ...]) -> str:
    """The model's ``gradcam_layer`` if it names one (VGG's ``block5_conv3``, its last
    convolution, as in Keras's examples) and it has more than one position at this input size,
    else the last layer whose output is an (N, h, w, C) map with more than one position — the
    book's "last convolutional layer". On a 1 × 1 map the heatmap is uniform by construction.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Conv2D, MaxPooling2D
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), MaxPooling2D(2), MaxPooling2D(2)])
        >>> model.layer_shapes((1, 6, 6, 3))["max_pooling2d_1"], default_layer(model, (1, 6, 6, 3))
        ((1, 1, 1, 4), 'max_pooling2d')
    """
    spatial = _multi_position_layers(model, input_shape)
    if getattr(model, "gradcam_layer", None) in spatial:
        return model.gradcam_layer
    if not spatial:
        raise ValueError(f"{type(model).__name__}: no layer has an (N, h, w, C) output with more than one "
                         f"position for inputs of shape {tuple(input_shape)}; layer shapes: "
                         f"{model.layer_shapes(tuple(input_shape))}")
    return spatial[-1]


def _multi_position_layers(model: Model, input_shape: tuple[int, ...]) -> list[str]:
    shapes = model.layer_shapes(tuple(input_shape))
    return [name for name, shape in shapes.items() if len(shape) == 4 and shape[1] * shape[2] > 1]


def _prepare(model, images, layer_name, class_index):
    images = as_images(images)
    if layer_name is None:
        layer_name = default_layer(model, images.shape)
    shape = check_layers(model, [layer_name], images, spatial=True)[layer_name]
    if shape[1] * shape[2] == 1:
        spatial = _multi_position_layers(model, images.shape)
        hint = f"the default layer is {spatial[-1]!r}" if spatial else "no layer of this model has more positions"
        warnings.warn(f"Grad-CAM on layer {layer_name!r}, whose output is 1 × 1 ({shape}), is uniform by "
                      f"construction; {hint}", stacklevel=3)
    index = np.full(images.shape[0], -1) if class_index is None else np.broadcast_to(class_index, images.shape[:1])
    return images, jnp.asarray(index, dtype=jnp.int32), layer_name


def class_score_gradient(model: Model, images, layer_name: str | None = None, class_index: int | None = None,
                         *, from_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The named layer's activation and the gradient of the class score with respect to it,
    both (N, h, w, C). Arguments as [grad_cam][jaxvision.interpret.grad_cam]."""
    images, index, layer_name = _prepare(model, images, layer_name, class_index)
    activation, grads = _score_gradient(*eval_split(model), images, index, layer_name, from_logits)
    return np.asarray(activation), np.asarray(grads)


@jax.jit
def _heatmap(activation: jax.Array, grads: jax.Array) -> jax.Array:
    weights = grads.mean(axis=(1, 2))  # (N, C): how much each channel matters to the class
    cam = jax.nn.relu(jnp.einsum("nhwc,nc->nhw", activation, weights) / activation.shape[-1])
    peak = cam.max(axis=(1, 2), keepdims=True)
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1), 0)


def grad_cam(model: Model, images, layer_name: str | None = None, class_index: int | None = None,
             *, from_logits: bool = False) -> np.ndarray:
    """Grad-CAM heatmaps (N, h, w) in [0, 1] at the resolution of ``layer_name``.

    Args:
      model: any [Model][jaxvision.models.base.Model]; run in eval mode.
      images: (N, H, W, C) batch in the model's input format.
      layer_name: a tapped layer with an (N, h, w, C) output (a sublayer of a layer by path,
        ``"sepbn_1/pointwise_bn"``); default [default_layer][jaxvision.interpret.gradcam.default_layer],
        the last one with more than one spatial position (a 1 × 1 choice gets a warning).
      class_index: class to explain (int or one per image); default each image's top class.
      from_logits: a single-output model returns logits rather than sigmoid probabilities.

    An image whose weighted map is nowhere positive gets an all-zero heatmap.

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> from jaxvision.layers import Conv2D, Dense, Flatten
        >>> from jaxvision.models import Sequential
        >>> model = Sequential([Conv2D(3, 4, 3, activation="relu", rngs=nnx.Rngs(0)), Flatten(),
        ...                     Dense(144, 1, activation="sigmoid", rngs=nnx.Rngs(1))])
        >>> heatmaps = grad_cam(model, jnp.ones((2, 8, 8, 3)), "conv2d")
        >>> heatmaps.shape, bool(heatmaps.min() >= 0), bool(heatmaps.max() <= 1)
        ((2, 6, 6), True, True)
    """
    images, index, layer_name = _prepare(model, images, layer_name, class_index)
    activation, grads = _score_gradient(*eval_split(model), images, index, layer_name, from_logits)
    return np.asarray(_heatmap(activation, grads))
