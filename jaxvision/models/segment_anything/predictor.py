"""``SamPredictor``: the reference's predictor API on a jaxvision ``Sam``.

``set_image`` resizes the longest side to ``image_size`` (PIL bilinear, as the reference),
normalises, pads bottom/right and computes the image embedding once (jitted). ``predict``
takes prompts in original-image pixels and returns masks at the original size. Several
prompts go through the decoder as one batch. ``predict_masks`` is the same computation
as a plain function of arrays, for ``nnx.jit`` / ``jax.vmap`` users.

Two coordinate conventions, both supported:

* segment-anything's (``SamPredictor``): prompts in the original image's pixels; the image is
  padded at the bottom/right inside the model.
* the book's (KerasHub): the image is first ``resize_and_pad``-ed to 1024 × 1024, which pads
  *centrally* to a square (``keras.ops.image.resize(..., pad_to_aspect_ratio=True)``), and
  prompts are given in that padded frame. Pass the padded image to ``set_image`` and the
  book's coordinates work as written.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from jaxvision.models.segment_anything.sam import PIXEL_MEAN, Sam, postprocess_masks, preprocess_shape


def resize_longest_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """uint8 ``(H, W, 3)`` → uint8 resized so the longer side is ``long_side`` (PIL bilinear,
    like the reference's ``ResizeLongestSide.apply_image``)."""
    h, w = preprocess_shape(image.shape[0], image.shape[1], long_side)
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def resize_and_pad(image, size: tuple[int, int] = (1024, 1024), fill_value: float = 0.0) -> np.ndarray:
    """``keras.ops.image.resize(image, size, pad_to_aspect_ratio=True)``: pad with
    ``fill_value`` equally on both sides (rows or columns) to ``size``'s aspect ratio, then resize
    bilinearly without antialiasing (jax.image.resize, as Keras on JAX). float32 out.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)``, any real dtype.
      size: ``(height, width)`` of the result.

    Examples:
        >>> import numpy as np
        >>> out = resize_and_pad(np.ones((100, 200, 3)), (200, 200))
        >>> out.shape, out[:50].max(), out[50:150].min(), out[150:].max()  # rows 50-149 hold the image
        ((200, 200, 3), np.float32(0.0), np.float32(1.0), np.float32(0.0))
    """
    image = jnp.asarray(image, jnp.float32)
    if image.ndim not in (3, 4) or len(size) != 2:
        raise ValueError(f"resize_and_pad: expected an (H, W, C) or (N, H, W, C) image and a (height, width) size, "
                         f"got shape {image.shape} and size {size}")
    height, width = image.shape[-3:-1]
    target_height, target_width = size
    top = (max(height, int(float(width * target_height) / target_width)) - height) // 2
    left = (max(width, int(float(height * target_width) / target_height)) - width) // 2
    pads = [(0, 0)] * (image.ndim - 3) + [(top, top), (left, left), (0, 0)]
    padded = jnp.pad(image, pads, constant_values=fill_value)
    resized = jax.image.resize(padded, (*image.shape[:-3], target_height, target_width, image.shape[-1]),
                               method="bilinear", antialias=False)
    return np.asarray(resized)


def predict_masks(sam: Sam, image_embedding: jax.Array, point_coords: jax.Array | None, point_labels: jax.Array | None,
                  boxes: jax.Array | None, mask_input: jax.Array | None, *, multimask_output: bool,
                  input_size: tuple[int, int], original_size: tuple[int, int]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Decode a batch of B prompts on one embedded image; a pure function of its arrays.

    Args:
      sam: the model (pass it through ``nnx.jit``, or ``nnx.split`` it for ``jax.jit``).
      image_embedding: ``(1, h, w, C)`` from ``sam.embed``.
      point_coords, point_labels: ``(B, N, 2)`` and ``(B, N)`` in *model-input* pixels, or None.
      boxes: ``(B, 4)`` x0, y0, x1, y1 in model-input pixels, or None.
      mask_input: ``(B, 4h, 4w)`` low-res logits, or None.
      multimask_output: 3 masks per prompt if True, else 1.
      input_size: (h, w) of the resized image before padding. original_size: (H, W) of the image.

    Returns:
      Mask logits ``(B, K, H, W)`` at the original size (threshold at 0), IoU predictions
      ``(B, K)`` and low-res logits ``(B, K, 4h, 4w)``.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.models.segment_anything import CONFIGS
        >>> sam = nnx.eval_shape(lambda: Sam(CONFIGS["tiny"], rngs=nnx.Rngs(0)))  # shapes only; jit a real model with
        >>> # nnx.jit(predict_masks, static_argnames=("multimask_output", "input_size", "original_size"))
        >>> decode = lambda sam, *a: predict_masks(sam, *a, multimask_output=True, input_size=(192, 256),
        ...                                        original_size=(60, 80))
        >>> logits, iou, low = nnx.eval_shape(decode, sam, jnp.zeros((1, 16, 16, 32)), jnp.ones((5, 1, 2)),
        ...                                   jnp.ones((5, 1)), None, None)
        >>> logits.shape, iou.shape, low.shape
        ((5, 3, 60, 80), (5, 3), (5, 3, 64, 64))
    """
    low_res, iou = sam.decode(image_embedding, point_coords, point_labels, boxes, mask_input, multimask_output)
    masks = postprocess_masks(low_res, sam.config.image_size, input_size, original_size)
    return masks, iou, low_res


@nnx.jit
def _embed(sam: Sam, image: jax.Array) -> jax.Array:
    return sam.embed(sam.preprocess(image))


# The big decoder compiles once per (prompts, tokens) shape: not per image size (the resize to the
# original size is one small einsum outside), not per prompt kind (the small prompt encoder is
# jitted apart), and not per multimask_output (all four masks are decoded, the choice is a slice).
@nnx.jit
def _encode_prompts(sam: Sam, coords, labels, boxes, masks) -> tuple[jax.Array, jax.Array]:
    return sam.prompt_encoder(coords, labels, boxes, masks)


@nnx.jit
def _decode_all(sam: Sam, image_embedding: jax.Array, sparse: jax.Array, dense: jax.Array) -> tuple[jax.Array, jax.Array]:
    return sam.mask_decoder.predict_masks(image_embedding, sam.prompt_encoder.dense_pe(), sparse, dense)



class SamPredictor:
    """Segment one image with point, box and mask prompts, as ``segment_anything.SamPredictor``.

    Examples:
        >>> import numpy as np
        >>> from jaxvision.models.segment_anything import CONFIGS, load_sam, sam_from_state_dict
        >>> from jaxvision.models.segment_anything.checkpoint import reference_shapes
        >>> # a real model comes from load_sam("sam_vit_b_01ec64.pth"); here, all-zero tiny weights
        >>> zeros = {key: np.zeros(shape, np.float32) for key, shape in reference_shapes(CONFIGS["tiny"]).items()}
        >>> predictor = SamPredictor(sam_from_state_dict(zeros))
        >>> predictor.set_image(np.zeros((60, 80, 3), np.uint8))
        >>> masks, iou, low_res = predictor.predict(np.array([[40, 30]]), np.array([1]))
        >>> masks.shape, masks.dtype, iou.shape, low_res.shape
        ((3, 60, 80), dtype('bool'), (3,), (3, 64, 64))
    """

    def __init__(self, sam: Sam):
        self.model = sam
        self.image_embedding: jax.Array | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Embed a uint8 ``(H, W, 3)`` image (``image_format`` "RGB" or "BGR")."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"SamPredictor.set_image: expected a uint8 (H, W, 3) image, "
                             f"got {image.dtype} {image.shape}")
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"SamPredictor.set_image: image_format must be 'RGB' or 'BGR', got {image_format!r}")
        if image_format == "BGR":
            image = image[..., ::-1]
        size = self.model.config.image_size
        resized = resize_longest_side(image, size)
        self.original_size, self.input_size = image.shape[:2], resized.shape[:2]
        # Padding with the mean pixel normalises to exactly the reference's zero padding, and
        # keeps the jitted encoder at one input shape for every image.
        padded = np.empty((1, size, size, 3), np.float32)
        padded[...] = np.array(PIXEL_MEAN, np.float32)
        padded[0, :resized.shape[0], :resized.shape[1]] = resized
        self.image_embedding = _embed(self.model, jnp.asarray(padded))

    def transform_coords(self, coords: np.ndarray) -> np.ndarray:
        """x/y in original-image pixels → model-input pixels (the reference's ``apply_coords``)."""
        (h, w), (new_h, new_w) = self.original_size, self.input_size
        coords = np.array(coords, dtype=np.float64)
        coords[..., 0] *= new_w / w
        coords[..., 1] *= new_h / h
        return coords.astype(np.float32)

    def predict(self, point_coords: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None, multimask_output: bool = True,
                return_logits: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one prompt, or for a batch of B prompts in one decoder call.

        Args:
          point_coords: ``(N, 2)`` x/y in original-image pixels, or ``(B, N, 2)`` for a batch.
          point_labels: ``(N,)`` or ``(B, N)``: 1 foreground, 0 background.
          box: ``(4,)`` or ``(B, 4)`` x0, y0, x1, y1 in original-image pixels.
          mask_input: ``(1, 4h, 4w)`` or ``(B, 4h, 4w)`` low-res logits from an earlier call.
          multimask_output: three candidate masks (ambiguous prompts) or one.
          return_logits: return mask logits instead of booleans.

        Returns:
          masks ``([B,] K, H, W)`` (bool unless ``return_logits``), IoU predictions ``([B,] K)``
          and low-res logits ``([B,] K, 4h, 4w)``, as NumPy arrays.
        """
        if self.image_embedding is None:
            raise RuntimeError("SamPredictor.predict: call set_image(...) first")
        if (point_coords is None) != (point_labels is None):
            raise ValueError("SamPredictor.predict: point_coords and point_labels must be given together")
        batched = any(a is not None and np.ndim(a) == n for a, n in ((point_coords, 3), (box, 2)))
        batched = batched or (mask_input is not None and point_coords is None and box is None and len(mask_input) > 1)
        coords = labels = boxes = masks = None
        if point_coords is not None:
            coords = self.transform_coords(point_coords)
            labels = np.asarray(point_labels, dtype=np.int32)
            if not batched:
                coords, labels = coords[None], labels[None]
            if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(f"SamPredictor.predict: point_coords {np.shape(point_coords)} and point_labels "
                                 f"{np.shape(point_labels)} do not match as (N, 2) and (N,), or (B, N, 2) and (B, N)")
        if box is not None:
            boxes = self.transform_coords(np.asarray(box, dtype=np.float64).reshape(-1, 2, 2)).reshape(-1, 4)
        if mask_input is not None:
            masks = np.asarray(mask_input, dtype=np.float32)
        sparse, dense = _encode_prompts(self.model, coords, labels, boxes, masks)
        low_res, iou = _decode_all(self.model, self.image_embedding, sparse, dense)
        chosen = slice(1, None) if multimask_output else slice(0, 1)  # as MaskDecoder.__call__
        low_res, iou = low_res[:, chosen], iou[:, chosen]
        logits = postprocess_masks(low_res, self.model.config.image_size, self.input_size, self.original_size)
        logits, iou, low_res = np.asarray(logits), np.asarray(iou), np.asarray(low_res)
        if not return_logits:
            logits = logits > 0.0  # the reference's mask_threshold
        return (logits, iou, low_res) if batched else (logits[0], iou[0], low_res[0])
