"""``Sam`` ties the image encoder, prompt encoder and mask decoder together; ``SamConfig``
holds the hyperparameters, with the released ``vit_b`` / ``vit_l`` / ``vit_h`` and a tiny
test config. Also the reference's pre- and post-processing of images and masks.
"""

import dataclasses
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.segment_anything.common import Buffer
from jaxvision.models.segment_anything.image_encoder import ImageEncoderViT
from jaxvision.models.segment_anything.mask_decoder import MaskDecoder
from jaxvision.models.segment_anything.prompt_encoder import PromptEncoder

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclasses.dataclass(frozen=True)
class SamConfig:
    """Hyperparameters of a SAM model. ``out_chans`` is also the prompt/decoder width."""

    image_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    out_chans: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    num_multimask_outputs: int = 3

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


CONFIGS: dict[str, SamConfig] = {
    "vit_b": SamConfig(),
    "vit_l": SamConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": SamConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    # 256² input, 16×16 grid padded to 28 by the 14-windows: small enough for parity tests.
    "tiny": SamConfig(image_size=256, embed_dim=64, depth=2, num_heads=4, global_attn_indexes=(1,), out_chans=32,
                      decoder_mlp_dim=64, iou_head_hidden_dim=32),
}


class Sam(nnx.Module):
    """Segment Anything: ``embed`` an image once, then ``decode`` any number of prompts.

    Args:
      config: a ``SamConfig``, e.g. ``CONFIGS["vit_b"]``.
      rngs: ``nnx.Rngs`` for the random initialisation (replaced when a checkpoint is loaded).

    Examples:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> sam = nnx.eval_shape(lambda: Sam(CONFIGS["tiny"], rngs=nnx.Rngs(0)))  # shapes only
        >>> def segment(sam, image, points, labels):
        ...     emb = sam.embed(sam.preprocess(image))
        ...     return (emb, *sam.decode(emb, points, labels))
        >>> emb, masks, iou = nnx.eval_shape(segment, sam, jnp.zeros((1, 192, 256, 3)), jnp.ones((1, 1, 2)),
        ...                                  jnp.ones((1, 1)))
        >>> emb.shape, masks.shape, iou.shape
        ((1, 16, 16, 32), (1, 3, 64, 64), (1, 3))
    """

    def __init__(self, config: SamConfig, *, rngs: nnx.Rngs):
        self.config = config
        c = config
        self.image_encoder = ImageEncoderViT(
            image_size=c.image_size, patch_size=c.patch_size, embed_dim=c.embed_dim, depth=c.depth,
            num_heads=c.num_heads, window_size=c.window_size, global_attn_indexes=c.global_attn_indexes,
            out_chans=c.out_chans, rngs=rngs)
        self.prompt_encoder = PromptEncoder(c.out_chans, (c.grid, c.grid), (c.image_size, c.image_size),
                                            c.mask_in_chans, rngs=rngs)
        self.mask_decoder = MaskDecoder(
            transformer_dim=c.out_chans, num_multimask_outputs=c.num_multimask_outputs, depth=c.decoder_depth,
            num_heads=c.decoder_heads, mlp_dim=c.decoder_mlp_dim, iou_head_depth=c.iou_head_depth,
            iou_head_hidden_dim=c.iou_head_hidden_dim, rngs=rngs)

    def preprocess(self, images: jax.Array) -> jax.Array:
        """RGB ``(B, h, w, 3)`` in [0, 255] with ``h, w ≤ image_size`` → normalised and zero-padded
        bottom/right to ``(B, image_size, image_size, 3)``."""
        size = self.config.image_size
        if images.ndim != 4 or images.shape[-1] != 3 or max(images.shape[1:3]) > size:
            raise ValueError(f"Sam.preprocess: expected RGB images (B, h, w, 3) with h, w <= {size}, "
                             f"got shape {tuple(images.shape)}")
        x = (images.astype(jnp.float32) - jnp.array(PIXEL_MEAN)) / jnp.array(PIXEL_STD)
        return jnp.pad(x, ((0, 0), (0, size - x.shape[1]), (0, size - x.shape[2]), (0, 0)))

    def embed(self, images: jax.Array) -> jax.Array:
        """Preprocessed ``(B, image_size, image_size, 3)`` → image embeddings ``(B, h, w, out_chans)``."""
        return self.image_encoder(images)

    def decode(self, image_embeddings: jax.Array, points: jax.Array | None = None, labels: jax.Array | None = None,
               boxes: jax.Array | None = None, mask_input: jax.Array | None = None,
               multimask_output: bool = True) -> tuple[jax.Array, jax.Array]:
        """Low-res mask logits ``(B, K, 4h, 4w)`` and IoU predictions ``(B, K)`` for a batch of B
        prompts on one image (or one image each); K is 3 with ``multimask_output`` else 1.
        Prompts are in model-input pixels; see ``PromptEncoder`` for their shapes."""
        sparse, dense = self.prompt_encoder(points, labels, boxes, mask_input)
        return self.mask_decoder(image_embeddings, self.prompt_encoder.dense_pe(), sparse, dense, multimask_output)


def count_params(model: nnx.Module, include_buffers: bool = False) -> int:
    """Number of ``nnx.Param`` scalars, as torch's ``parameters()`` counts (buffers excluded).

    ``include_buffers=True`` adds the prompt encoder's fixed random positional-encoding matrix
    (2 × 128, a torch buffer), as Keras/KerasHub counts it among the non-trainable weights: the
    book's vit_h total, 641,090,864, is this count; torch's is 641,090,608.

    Examples:
        >>> sam = nnx.eval_shape(lambda: Sam(CONFIGS["vit_b"], rngs=nnx.Rngs(0)))
        >>> count_params(sam), count_params(sam, include_buffers=True)
        (93735472, 93735728)
    """
    kinds = nnx.Any(nnx.Param, Buffer) if include_buffers else nnx.Param
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, kinds)))


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The reference's ``ResizeLongestSide.get_preprocess_shape``: scale so the longer side is
    ``long_side``, rounding half up.

    Examples:
        >>> preprocess_shape(600, 800, 1024)
        (768, 1024)
    """
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``(out, in)`` weights of torch's bilinear resize (align_corners=False, no antialias)."""
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    m = np.zeros((out_size, in_size))
    np.add.at(m, (np.arange(out_size), lo), 1.0 - frac)
    np.add.at(m, (np.arange(out_size), hi), frac)
    return m


@lru_cache(maxsize=32)
def upscale_matrix(low_res: int, image_size: int, input_len: int, original_len: int) -> np.ndarray:
    """One axis of ``postprocess_masks`` as a matrix ``(original_len, low_res)``: bilinear to
    ``image_size``, crop to the resized image's ``input_len``, bilinear to ``original_len``."""
    to_padded = _bilinear_matrix(low_res, image_size)[:input_len]
    return (_bilinear_matrix(input_len, original_len) @ to_padded).astype(np.float32)


def postprocess_masks(low_res: jax.Array, image_size: int, input_size: tuple[int, int],
                      original_size: tuple[int, int]) -> jax.Array:
    """Mask logits ``(..., 4h, 4w)`` → logits at the original image size ``(..., H, W)``, as the
    reference's ``Sam.postprocess_masks`` (two bilinear resizes and a crop, composed exactly
    into one linear map per axis).

    Examples:
        >>> postprocess_masks(jnp.ones((1, 3, 64, 64)), 256, (192, 256), (300, 400)).shape
        (1, 3, 300, 400)
    """
    rows = upscale_matrix(low_res.shape[-2], image_size, input_size[0], original_size[0])
    cols = upscale_matrix(low_res.shape[-1], image_size, input_size[1], original_size[1])
    return jnp.einsum("yh,...hw,xw->...yx", rows, low_res, cols)
