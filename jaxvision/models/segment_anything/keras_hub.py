"""Read a KerasHub SAM preset's ``model.weights.h5`` into reference-named tensors.

KerasHub stores weights by class-based paths (``layers/windowed_transformer_encoder_3/...``,
the mask decoder at the top level under ``mask_decoder/...``), in Keras layouts: Dense
``(in, out)``, Conv ``HWIO``, ConvTranspose ``(kh, kw, out, in)``. ``keras_hub_path``
maps each reference ``state_dict`` key to its path and the axes that turn the reference
layout into Keras's; loading inverts that, so the usual shape checks of
``sam_from_state_dict`` apply.
"""

import os
import re
from collections.abc import Callable

import numpy as np

LINEAR, CONV, CONV_TRANSPOSE = (1, 0), (2, 3, 1, 0), (2, 3, 1, 0)  # reference axes in Keras order
# ConvTranspose2d (in, out, kh, kw) → Keras (kh, kw, out, in) is the same permutation as OIHW → HWIO.


def _nth(index: str) -> str:
    """Keras's unique-name suffix of the index-th layer of a class: "", "_1", "_2", …"""
    return "" if index == "0" else f"_{index}"


def _lin(n: str) -> str:
    return _nth(str(int(n) - 1))  # lin1, lin2 → dense, dense_1


_NECK = {"0": ("conv2d", CONV), "1": ("layer_normalization", None), "2": ("conv2d_1", CONV),
         "3": ("layer_normalization_1", None)}
_DOWN = {"0": ("conv2d", CONV), "1": ("layer_normalization", None), "3": ("conv2d_1", CONV),
         "4": ("layer_normalization_1", None), "6": ("conv2d_2", CONV)}
_UP = {"0": ("conv2d_transpose", CONV_TRANSPOSE), "1": ("layer_normalization", None),
       "3": ("conv2d_transpose_1", CONV_TRANSPOSE)}
_POINTS = {"0": "background_point_embed", "1": "foreground_point_embed", "2": "top_left_corner_embed",
           "3": "bottom_right_corner_embed"}
_ATTN = {"self_attn": "self_attention", "cross_attn_token_to_image": "cross_attention_token_to_image",
         "cross_attn_image_to_token": "cross_attention_image_to_token"}
_PROJ = {"q": "query_proj", "k": "key_proj", "v": "value_proj", "out": "out_proj"}
_ENCODER = "layers/windowed_transformer_encoder{}"
_TWO_WAY = "mask_decoder/transformer/layers/two_way_multi_head_attention{}"

# reference module pattern → (its KerasHub path and the weight's axes permutation) from the match groups
_MODULES = [
    (r"image_encoder\.patch_embed\.proj", lambda: ("layers/vi_t_det_patching_and_embedding/projection", CONV)),
    (r"image_encoder\.blocks\.(\d+)\.norm(\d)", lambda i, n: (f"{_ENCODER.format(_nth(i))}/layer_norm{n}", None)),
    (r"image_encoder\.blocks\.(\d+)\.attn\.(qkv|proj)",
     lambda i, p: (f"{_ENCODER.format(_nth(i))}/attention/{'qkv' if p == 'qkv' else 'projection'}", LINEAR)),
    (r"image_encoder\.blocks\.(\d+)\.mlp\.lin(\d)",
     lambda i, n: (f"{_ENCODER.format(_nth(i))}/mlp_block/dense_net/layers/dense{_lin(n)}", LINEAR)),
    (r"image_encoder\.neck\.(\d)", lambda n: (f"layers/sequential/layers/{_NECK[n][0]}", _NECK[n][1])),
    (r"prompt_encoder\.point_embeddings\.(\d)", lambda n: (f"layers/sam_prompt_encoder/{_POINTS[n]}", None)),
    (r"prompt_encoder\.(not_a_point_embed|no_mask_embed)", lambda name: (f"layers/sam_prompt_encoder/{name}", None)),
    (r"prompt_encoder\.mask_downscaling\.(\d)",
     lambda n: (f"layers/sam_prompt_encoder/mask_downscaler/layers/{_DOWN[n][0]}", _DOWN[n][1])),
    (r"mask_decoder\.(iou_token|mask_tokens)", lambda name: (f"mask_decoder/{name}", None)),
    (r"mask_decoder\.output_upscaling\.(\d)",
     lambda n: (f"mask_decoder/output_upscaling/layers/{_UP[n][0]}", _UP[n][1])),
    (r"mask_decoder\.output_hypernetworks_mlps\.(\d+)\.layers\.(\d)",
     lambda i, j: (f"mask_decoder/output_hypernetworks_mlps/mlp{_nth(i)}/mlp_block/layers/dense{_nth(j)}", LINEAR)),
    (r"mask_decoder\.iou_prediction_head\.layers\.(\d)",
     lambda j: (f"mask_decoder/iou_prediction_head/mlp_block/layers/dense{_nth(j)}", LINEAR)),
    (r"mask_decoder\.transformer\.layers\.(\d+)\.(self_attn|cross_attn_token_to_image|cross_attn_image_to_token)"
     r"\.(q|k|v|out)_proj", lambda l, a, p: (f"{_TWO_WAY.format(_nth(l))}/{_ATTN[a]}/{_PROJ[p]}", LINEAR)),
    (r"mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)",
     lambda l, n: (f"{_TWO_WAY.format(_nth(l))}/layer_norm{n}", None)),
    (r"mask_decoder\.transformer\.layers\.(\d+)\.mlp\.lin(\d)",
     lambda l, n: (f"{_TWO_WAY.format(_nth(l))}/mlp_block/mlp_block/layers/dense{_lin(n)}", LINEAR)),
    (r"mask_decoder\.transformer\.final_attn_token_to_image\.(q|k|v|out)_proj",
     lambda p: (f"mask_decoder/transformer/final_attention_token_to_image/{_PROJ[p]}", LINEAR)),
    (r"mask_decoder\.transformer\.norm_final_attn", lambda: ("mask_decoder/transformer/final_layer_norm", None)),
]
_PARAMETERS = {  # reference tensors that are not a module's weight/bias
    "image_encoder.pos_embed": "layers/add_positional_embedding/vars/0",
    "image_encoder.blocks.{}.attn.rel_pos_h": "layers/windowed_transformer_encoder{}/attention/add_decomposed_relative_pe/vars/0",
    "image_encoder.blocks.{}.attn.rel_pos_w": "layers/windowed_transformer_encoder{}/attention/add_decomposed_relative_pe/vars/1",
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix":
        "layers/sam_prompt_encoder/positional_embedding_layer/vars/0",
}


def keras_hub_path(key: str) -> tuple[str, tuple[int, ...] | None]:
    """The ``model.weights.h5`` path of a reference key and the axes that permute the
    reference tensor into the Keras layout (None: same layout).

    Examples:
        >>> keras_hub_path("image_encoder.blocks.3.attn.qkv.weight")
        ('layers/windowed_transformer_encoder_3/attention/qkv/vars/0', (1, 0))
        >>> keras_hub_path("mask_decoder.output_upscaling.0.weight")
        ('mask_decoder/output_upscaling/layers/conv2d_transpose/vars/0', (2, 3, 1, 0))
        >>> keras_hub_path("image_encoder.blocks.0.attn.rel_pos_w")
        ('layers/windowed_transformer_encoder/attention/add_decomposed_relative_pe/vars/1', None)
    """
    block = re.fullmatch(r"image_encoder\.blocks\.(\d+)\.attn\.(rel_pos_[hw])", key)
    if block:
        return _PARAMETERS[f"image_encoder.blocks.{{}}.attn.{block[2]}"].format(_nth(block[1])), None
    if key in _PARAMETERS:
        return _PARAMETERS[key], None
    module, leaf = key.rsplit(".", 1)
    for pattern, locate in _MODULES:
        match = re.fullmatch(pattern, module)
        if match:
            path, axes = locate(*match.groups())
            if leaf == "weight":
                return f"{path}/vars/0", axes
            if leaf == "bias":
                return f"{path}/vars/1", None
    raise ValueError(f"no KerasHub counterpart for SAM tensor {key!r}")


def load_keras_hub_preset(weights: str | os.PathLike, reference_keys: Callable[[int], list[str]]
                          ) -> dict[str, np.ndarray]:
    """Reference-named tensors (reference layouts) from a KerasHub SAM ``model.weights.h5``;
    ``reference_keys(depth)`` lists the names to look for (passed in, so this module stays a
    leaf below ``checkpoint``)."""
    import h5py

    from jaxvision.untrusted import Budget
    from jaxvision.weights.hdf5 import child, open_h5, read_dataset

    weights = os.fspath(weights)
    budget = Budget(weights, os.path.getsize(weights))
    try:
        with open_h5(weights) as f:
            layers = child(f, "layers", weights)
            names = list(layers.keys()) if isinstance(layers, h5py.Group) else []
            depth = len([name for name in names if name.startswith("windowed_transformer_encoder")])
            tensors = {}
            for key in reference_keys(depth):
                path, axes = keras_hub_path(key)
                node = f
                for part in path.split("/"):  # one link at a time, none followed out of the file
                    node = child(node, part, weights) if isinstance(node, h5py.Group) else None
                if isinstance(node, h5py.Dataset):
                    value = np.asarray(read_dataset(node, budget), dtype=np.float32)
                    tensors[key] = value if axes is None else value.transpose(np.argsort(axes))
    except OSError as e:
        raise ValueError(f"{weights}: not a readable Keras weights file ({e})") from e
    return tensors
