"""Write ``keras_hub_tiny/model.weights.h5``: the tiny reference SAM of ``sam_tiny.pth`` as a
KerasHub SAM, checked against the reference outputs before it is saved.

Run by hand (never in CI), in the project environment with KerasHub on the side:

    .venv/bin/pip install --no-deps --target /work/sam_kh_pkgs keras-hub==0.32.0 kagglehub kagglesdk \\
        requests urllib3 idna certifi charset-normalizer tqdm protobuf regex rich markdown-it-py mdurl pygments
    KERAS_BACKEND=jax PYTHONPATH=/work/sam_kh_pkgs .venv/bin/python tests/models/segment_anything/make_keras_hub_fixture.py

It builds KerasHub's ``ViTDetBackbone`` / ``SAMPromptEncoder`` / ``SAMMaskDecoder`` with the tiny
config, writes the tensors of ``sam_tiny.pth`` into the Keras weights file at the paths
``jaxvision.models.segment_anything.keras_hub.keras_hub_path`` gives (so KerasHub's own
``load_weights`` reads them), runs KerasHub on the fixture's image and prompts, and requires
its masks and IoU predictions to match the torch reference's (``sam_tiny_reference.npz``) to
1e-4. That checks the path and layout mapping independently of jaxvision's model. KerasHub
differs from the reference in ways undone here: it normalises inside the backbone (so the
padding is filled with the mean pixel), it adds no padding point (appended here) and it
returns all four masks. Only the tokenizer packages KerasHub imports at start-up are stubbed.
"""

import sys
import types
from pathlib import Path

import h5py
import numpy as np


def stub_tokenizer_packages() -> None:
    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    for name in ("tokenizers", "tokenizers.decoders", "tokenizers.models", "tokenizers.pre_tokenizers",
                 "tokenizers.processors", "sentencepiece"):
        sys.modules.setdefault(name, Stub(name))


stub_tokenizer_packages()
from keras_hub.src.models.sam.sam_backbone import SAMBackbone  # noqa: E402
from keras_hub.src.models.sam.sam_mask_decoder import SAMMaskDecoder  # noqa: E402
from keras_hub.src.models.sam.sam_prompt_encoder import SAMPromptEncoder  # noqa: E402
from keras_hub.src.models.vit_det.vit_det_backbone import ViTDetBackbone  # noqa: E402

from jaxvision.models.segment_anything.keras_hub import keras_hub_path  # noqa: E402
from jaxvision.models.segment_anything.predictor import resize_longest_side  # noqa: E402
from jaxvision.models.segment_anything.sam import PIXEL_MEAN  # noqa: E402
from jaxvision.models.segment_anything.torch_zip import load_torch_state_dict  # noqa: E402

HERE = Path(__file__).parent
CASES = ("point", "multipoint", "box", "point_box", "mask_point")


def keras_hub_tiny_sam() -> SAMBackbone:
    image_encoder = ViTDetBackbone(hidden_size=64, num_layers=2, intermediate_dim=256, num_heads=4,
                                   global_attention_layer_indices=[1], patch_size=16, num_output_channels=32,
                                   window_size=14, image_shape=(256, 256, 3))
    prompt_encoder = SAMPromptEncoder(hidden_size=32, image_embedding_size=(16, 16), input_image_size=(256, 256),
                                      mask_in_channels=16)
    mask_decoder = SAMMaskDecoder(num_layers=2, hidden_size=32, intermediate_dim=64, num_heads=8, embedding_dim=32,
                                  num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=32)
    return SAMBackbone(image_encoder=image_encoder, prompt_encoder=prompt_encoder, mask_decoder=mask_decoder)


def run(sam: SAMBackbone, image: np.ndarray, points, labels, boxes, masks) -> tuple[np.ndarray, np.ndarray]:
    out = sam({"images": image, "points": points, "labels": labels, "boxes": boxes, "masks": masks})
    decoded = sam.mask_decoder(image_embeddings=out["image_embeddings"],
                               prompt_dense_positional_embeddings=out["prompt_dense_positional_embeddings"],
                               prompt_sparse_embeddings=out["prompt_sparse_embeddings"],
                               prompt_dense_embeddings=out["prompt_dense_embeddings"])
    return np.asarray(decoded["masks"]), np.asarray(decoded["iou_pred"])


def main() -> None:
    reference = dict(np.load(HERE / "sam_tiny_reference.npz"))
    tensors = load_torch_state_dict(HERE / "sam_tiny.pth")
    sam = keras_hub_tiny_sam()

    image = reference["image"]
    resized = resize_longest_side(image, 256)
    scale = np.array([resized.shape[1] / image.shape[1], resized.shape[0] / image.shape[0]])
    padded = np.empty((1, 256, 256, 3), np.float32)
    padded[...] = np.array(PIXEL_MEAN, np.float32)  # normalises to the reference's zero padding
    padded[0, :resized.shape[0], :resized.shape[1]] = resized
    padded /= 255.0  # KerasHub's SamImageConverter scale

    none_points, none_labels = np.zeros((1, 0, 2), np.float32), np.zeros((1, 0), np.float32)
    none_boxes, none_masks = np.zeros((1, 0, 2, 2), np.float32), np.zeros((1, 0, 64, 64, 1), np.float32)
    run(sam, padded, none_points, none_labels, none_boxes, none_masks)  # builds every layer

    out_dir = HERE / "keras_hub_tiny"
    out_dir.mkdir(exist_ok=True)
    weights = out_dir / "model.weights.h5"
    sam.save_weights(weights)
    with h5py.File(weights, "r+") as f:
        for key, value in tensors.items():
            path, axes = keras_hub_path(key)
            f[path][...] = value if axes is None else value.transpose(axes)
    sam.load_weights(weights)

    for case in CASES:
        points, labels, boxes, masks = none_points, none_labels, none_boxes, none_masks
        if f"{case}/point_coords" in reference:
            points = (reference[f"{case}/point_coords"] * scale)[None].astype(np.float32)
            labels = reference[f"{case}/point_labels"][None].astype(np.float32)
        if f"{case}/box" in reference:
            boxes = (reference[f"{case}/box"].reshape(2, 2) * scale)[None, None].astype(np.float32)
        elif points.shape[1]:  # the reference pads point prompts without a box
            points = np.concatenate([points, np.zeros((1, 1, 2), np.float32)], axis=1)
            labels = np.concatenate([labels, -np.ones((1, 1), np.float32)], axis=1)
        if case.startswith("mask"):
            masks = reference["mask_input"][None, ..., None].astype(np.float32)
        low_res, iou = run(sam, padded, points, labels, boxes, masks)
        chosen = slice(1, None) if reference[f"{case}/multimask_output"] else slice(0, 1)
        np.testing.assert_allclose(low_res[:, chosen], reference[f"{case}/low_res"][None], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(iou[:, chosen], reference[f"{case}/iou"][None], rtol=1e-4, atol=1e-4)
        print(f"{case}: KerasHub matches the reference, max |Δ| "
              f"{np.abs(low_res[:, chosen] - reference[f'{case}/low_res'][None]).max():.1e}")
    print(f"wrote {weights}")


if __name__ == "__main__":
    main()
