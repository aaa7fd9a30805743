"""Load SAM weights from the official ``sam_vit_{b,l,h}_*.pth`` files, Hugging Face
``facebook/sam-vit-*`` safetensors, or a KerasHub SAM preset directory, without torch.

Every parameter of ``Sam`` has one reference ``state_dict`` key, derived from its path
(the module attributes mirror the reference's names) and its module type, which also decides
the layout change (Linear ``(out, in)`` → ``(in, out)``, Conv OIHW → HWIO). The model
hyperparameters are read off the tensors, so ``vit_b``/``vit_l``/``vit_h`` (or a custom size)
is detected, every tensor is shape-checked, and the first mismatch is named.
"""

import dataclasses
import functools
import hashlib
import os
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.layers import Conv2D, Conv2DTranspose, Dense
from jaxvision.models.segment_anything.common import Embedding, LayerNorm
from jaxvision.models.segment_anything.sam import CONFIGS, Sam, SamConfig
from jaxvision.models.segment_anything.torch_zip import load_torch_state_dict
from jaxvision.untrusted import folder_file, regular_file
from jaxvision.weights.manifest import check_file, check_manifest

# (module type, our attribute) → (reference leaf name, axes of the reference tensor in our order)
_LEAVES: dict[tuple[type, str], tuple[str, tuple[int, ...] | None]] = {
    (Dense, "kernel"): ("weight", (1, 0)),  # Linear (out, in)
    (Conv2D, "kernel"): ("weight", (2, 3, 1, 0)),  # Conv2d OIHW → HWIO
    (Conv2DTranspose, "kernel"): ("weight", (2, 3, 1, 0)),  # ConvTranspose2d (in, out, kh, kw) → Keras (kh, kw, out, in)
    (LayerNorm, "scale"): ("weight", None),
    (Embedding, "embedding"): ("weight", None),
}
_RENAMES = {"image_encoder.patch_embed.": "image_encoder.patch_embed.proj."}

# The released files and their MD5s: the six hex digits in each name are the MD5's prefix (Meta
# publishes no sha256; the full MD5s are the ones downstream projects check).
RELEASED_MD5 = {
    "sam_vit_h_4b8939.pth": "4b8939a88964f0f4ff5f5b2642c598a6",
    "sam_vit_l_0b3195.pth": "0b3195507c641ddb6910d2bb5adee89c",
    "sam_vit_b_01ec64.pth": "01ec64d29a2fca3f0661936605ae66f8",
}
DOWNLOAD_HINT = ("one of the official checkpoints sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth "
                 "(375 MB / 1.2 GB / 2.4 GB; MD5 prefixes 01ec64, 0b3195, 4b8939, as in the names) from "
                 "https://dl.fbaipublicfiles.com/segment_anything/ (links in the segment-anything README), "
                 "a Hugging Face facebook/sam-vit-{base,large,huge} model.safetensors, "
                 "or a KerasHub sam_{base,large,huge}_sa1b preset directory (model.weights.h5)")


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """Where the weights came from: file, format, detected variant, the file's sha256 and MD5,
    and the name of the official release whose MD5 it matches (None if none)."""

    path: str
    format: str
    variant: str
    sha256: str
    md5: str
    release: str | None


def _parameter_leaves(model: nnx.Module) -> list[tuple[tuple, str, tuple[int, ...] | None, tuple[int, ...]]]:
    """``(path, reference key, axes permutation, our shape)`` for every variable of ``model``."""
    leaves = []
    for path, variable in nnx.to_flat_state(nnx.state(model)):
        owner = model
        for part in path[:-1]:
            owner = owner[part] if isinstance(part, int) else getattr(owner, part)
        name, axes = _LEAVES.get((type(owner), path[-1]), (path[-1], None))
        key = ".".join(str(p) for p in path[:-1]) + "." + name
        for old, new in _RENAMES.items():
            key = key.replace(old, new) if key.startswith(old) else key
        leaves.append((path, key, axes, tuple(variable.get_value().shape)))
    return leaves


def reference_shapes(config: SamConfig) -> dict[str, tuple[int, ...]]:
    """The reference ``state_dict`` keys and shapes for ``config`` (nothing is allocated).

    Examples:
        >>> shapes = reference_shapes(CONFIGS["vit_b"])
        >>> len(shapes), shapes["image_encoder.blocks.2.attn.rel_pos_h"]
        (314, (127, 64))
    """
    model = nnx.eval_shape(lambda: Sam(config, rngs=nnx.Rngs(0)))
    return {key: shape if axes is None else tuple(shape[axes.index(i)] for i in range(len(axes)))
            for _path, key, axes, shape in _parameter_leaves(model)}


MAX_DEPTH = 64  # encoder blocks: the released models have 12, 24 and 32


def check_keys(tensors: dict[str, np.ndarray], source: str = "checkpoint") -> int:
    """The number of encoder blocks, once the tensors' names are exactly the reference's for
    that many blocks (checked on names alone, before any model is built, so a small file
    naming hundreds of blocks costs nothing).

    Examples:
        >>> names = dict.fromkeys(reference_keys(2))
        >>> check_keys(names)
        2
        >>> check_keys({**names, "mask_decoder.transformer.layers.799.norm1.weight": None}, "x.pth")
        Traceback (most recent call last):
        ValueError: x.pth: unexpected tensor(s) ['mask_decoder.transformer.layers.799.norm1.weight'] for a SAM model with 2 encoder blocks
    """
    blocks = {k.split(".")[2] for k in tensors if isinstance(k, str) and k.startswith("image_encoder.blocks.")}
    if len(blocks) > MAX_DEPTH:
        raise ValueError(f"{source}: {len(blocks)} encoder blocks, more than the {MAX_DEPTH} a SAM model may have")
    expected = set(reference_keys(len(blocks)))
    missing, unexpected = sorted(expected - set(tensors)), sorted(map(str, set(tensors) - expected))
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor(s) {unexpected[:5]} for a SAM model with {len(blocks)} "
                         "encoder blocks")
    if missing:
        raise ValueError(f"{source}: missing tensor(s) {missing[:5]}; is this a Segment Anything checkpoint?")
    return len(blocks)


def config_from_state_dict(tensors: dict[str, np.ndarray], source: str = "checkpoint") -> SamConfig:
    """Read the SAM hyperparameters off reference-named tensors (decoder heads: 8, as in all
    releases), once ``check_keys`` has checked their names."""
    depth = check_keys(tensors, source)

    def shape(key: str, ndim: int) -> tuple[int, ...]:
        found = tuple(np.shape(tensors[key]))
        if len(found) != ndim or 0 in found:
            raise ValueError(f"{source}: tensor {key!r} has shape {found}, not {ndim} positive sizes")
        return found

    embed_dim, _, patch, _ = shape("image_encoder.patch_embed.proj.weight", 4)
    grid = shape("image_encoder.pos_embed", 4)[1]
    table_rows = [shape(f"image_encoder.blocks.{i}.attn.rel_pos_h", 2)[0] for i in range(depth)]
    global_blocks = tuple(i for i, rows in enumerate(table_rows) if rows == 2 * grid - 1)
    windowed = [rows for rows in table_rows if rows != 2 * grid - 1]
    head_dim = shape("image_encoder.blocks.0.attn.rel_pos_h", 2)[1]
    if embed_dim % head_dim:
        raise ValueError(f"{source}: embedding width {embed_dim} is not a multiple of the head width {head_dim}")
    return SamConfig(
        image_size=grid * patch, patch_size=patch, embed_dim=embed_dim, depth=depth,
        num_heads=embed_dim // head_dim,
        window_size=(windowed[0] + 1) // 2 if windowed else 14, global_attn_indexes=global_blocks,
        out_chans=shape("image_encoder.neck.0.weight", 4)[0],
        mask_in_chans=shape("prompt_encoder.mask_downscaling.3.weight", 4)[0],
        decoder_depth=len({k.split(".")[3] for k in tensors if k.startswith("mask_decoder.transformer.layers.")}),
        decoder_mlp_dim=shape("mask_decoder.transformer.layers.0.mlp.lin1.weight", 2)[0],
        iou_head_depth=len({k for k in tensors if re.fullmatch(r"mask_decoder\.iou_prediction_head\.layers\.\d+\.weight", k)}),
        iou_head_hidden_dim=shape("mask_decoder.iou_prediction_head.layers.0.weight", 2)[0],
        num_multimask_outputs=shape("mask_decoder.mask_tokens.weight", 2)[0] - 1)


def variant_name(config: SamConfig) -> str:
    """``"vit_b"``, ``"vit_l"``, ``"vit_h"``, ``"tiny"`` or ``"custom"``."""
    return next((name for name, c in CONFIGS.items() if c == config), "custom")


def sam_from_state_dict(tensors: dict[str, np.ndarray], config: SamConfig | None = None,
                        source: str = "checkpoint") -> Sam:
    """A ``Sam`` holding ``tensors`` (reference names and layouts), every one shape-checked.

    Raises:
      ValueError: a tensor is missing, unexpected, or has the wrong shape (the first one is named).
    """
    config = config or config_from_state_dict(tensors, source)
    try:
        model = nnx.eval_shape(lambda: Sam(config, rngs=nnx.Rngs(0)))
    except Exception as e:  # sizes read off the tensors that no SAM has (a window wider than the grid, ...)
        raise ValueError(f"{source}: its tensors' shapes make no SAM model ({type(e).__name__}: {str(e)[:200]})") \
            from None
    graphdef, state = nnx.split(model)
    leaves = {path: (key, axes, shape) for path, key, axes, shape in _parameter_leaves(model)}
    filled = []
    for path, variable in nnx.to_flat_state(state):
        key, axes, shape = leaves[path]
        if key not in tensors:
            raise ValueError(f"{source}: missing tensor {key!r} (expected by the {variant_name(config)} config)")
        value = np.asarray(tensors[key])
        if axes is not None and value.ndim == len(axes):
            value = value.transpose(axes)
        if value.shape != shape:
            raise ValueError(f"{source}: tensor {key!r} has shape {tuple(tensors[key].shape)}, which does not fit "
                             f"the {variant_name(config)} model (our layout {shape}, got {value.shape})")
        filled.append((path, variable.replace(jnp.asarray(value, dtype=jnp.float32))))
    unexpected = sorted(set(tensors) - {key for key, _, _ in leaves.values()})
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor(s) {unexpected[:5]} for a SAM model")
    return nnx.merge(graphdef, nnx.from_flat_state(filled))


def hf_key(key: str) -> str:
    """The Hugging Face ``SamModel`` name of a reference key (transformers' convert_sam_to_hf.py).

    Examples:
        >>> hf_key("image_encoder.blocks.3.norm1.weight")
        'vision_encoder.layers.3.layer_norm1.weight'
        >>> hf_key("mask_decoder.output_hypernetworks_mlps.2.layers.1.bias")
        'mask_decoder.output_hypernetworks_mlps.2.layers.0.bias'
    """
    mlp = re.fullmatch(r"(.*(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d)\.(\w+)", key)
    if mlp:
        key = f"{mlp[1]}.{ {'0': 'proj_in', '1': 'layers.0', '2': 'proj_out'}[mlp[2]] }.{mlp[3]}"
    for old, new in [("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
                     ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
                     ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
                     ("mask_downscaling.0", "mask_embed.conv1"), ("mask_downscaling.1", "mask_embed.layer_norm1"),
                     ("mask_downscaling.3", "mask_embed.conv2"), ("mask_downscaling.4", "mask_embed.layer_norm2"),
                     ("mask_downscaling.6", "mask_embed.conv3"), ("point_embeddings", "point_embed"),
                     ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
                     ("image_encoder", "vision_encoder"), ("neck.0", "neck.conv1"), ("neck.1", "neck.layer_norm1"),
                     ("neck.2", "neck.conv2"), ("neck.3", "neck.layer_norm2"),
                     ("patch_embed.proj", "patch_embed.projection"), (".norm", ".layer_norm"), ("blocks", "layers")]:
        key = key.replace(old, new)
    return key


def reference_keys(depth: int) -> list[str]:
    """The reference key names of a SAM with ``depth`` encoder blocks and the released prompt
    encoder and decoder structure (names do not depend on widths), from block 0's names: no
    model is built, whatever ``depth`` is.

    Examples:
        >>> len(reference_keys(12)) == len(reference_shapes(CONFIGS["vit_b"]))
        True
    """
    block, others = _block_keys()
    return others + [key.replace("image_encoder.blocks.0.", f"image_encoder.blocks.{i}.", 1)
                     for i in range(depth) for key in block]


@functools.cache
def _block_keys() -> tuple[list[str], list[str]]:
    names = list(reference_shapes(dataclasses.replace(CONFIGS["tiny"], depth=1, global_attn_indexes=())))
    first = [key for key in names if key.startswith("image_encoder.blocks.0.")]
    return first, [key for key in names if key not in first]


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError(f"{path}: reading .safetensors needs the 'safetensors' package (pip install safetensors)") from None
    try:
        hf = load_file(regular_file(path, "checkpoint"))
    except (OSError, ValueError):
        raise
    except Exception as e:  # safetensors' own error type: a header or size the file does not back up
        raise ValueError(f"{path}: not a readable .safetensors file ({type(e).__name__}: {e})") from None
    depth = len({k.split(".")[2] for k in hf if k.startswith("vision_encoder.layers.")})
    tensors = {}
    for key in reference_keys(depth):
        name = hf_key(key)
        if name not in hf and name.startswith("prompt_encoder.shared_embedding"):
            name = "shared_image_embedding.positional_embedding"  # the shared copy SamModel keeps
        if name in hf:
            tensors[key] = hf[name]
    return tensors


def file_digests(path: str | os.PathLike) -> tuple[str, str]:
    """sha256 and MD5 of a file, read once."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def load_sam(path: str | os.PathLike, *, manifest: str | os.PathLike | dict | None = None
             ) -> tuple[Sam, CheckpointInfo]:
    """Load a SAM checkpoint: a torch ``.pth`` (zip) state dict, a ``.safetensors`` file from
    Hugging Face, or a KerasHub preset directory holding ``model.weights.h5``.

    ``manifest`` ([jaxvision.weights.make_manifest][jaxvision.weights.make_manifest] with
    ``input_shape=None``): the file's
    sha256 is checked before it is read and every tensor after.

    Returns the model and a ``CheckpointInfo`` with the detected variant and the sha256
    of the file read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint; use {DOWNLOAD_HINT}")
    if path.is_dir():
        if not (path / "model.weights.h5").exists():
            raise ValueError(f"{path}: a KerasHub preset directory needs model.weights.h5")
        weights = folder_file(path, "model.weights.h5", "SAM preset file")  # never a link out of the preset
    if manifest is not None:
        check_file(weights if path.is_dir() else path, manifest)
    if path.is_dir():
        from jaxvision.models.segment_anything.keras_hub import load_keras_hub_preset

        tensors, fmt, hashed = load_keras_hub_preset(weights, reference_keys), "keras_hub", weights
    elif path.suffix == ".safetensors":
        tensors, fmt, hashed = _load_safetensors(str(path)), "safetensors", path
    else:
        regular_file(path, "checkpoint")
        tensors, fmt, hashed = load_torch_state_dict(path), "torch", path
    model = sam_from_state_dict(tensors, source=str(hashed))
    if manifest is not None:
        check_manifest(model, hashed, manifest, file_checked=True)
    sha256, md5 = file_digests(hashed)
    release = next((name for name, known in RELEASED_MD5.items() if known == md5), None)
    return model, CheckpointInfo(str(hashed), fmt, variant_name(model.config), sha256, md5, release)
