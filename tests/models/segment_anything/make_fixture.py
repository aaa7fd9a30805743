"""Write the Segment Anything parity fixtures from Meta's reference implementation.

Run by hand, in a separate Python 3.11 environment with torch (never in CI):

    python3.11 -m venv /work/sam_ref_venv
    /work/sam_ref_venv/bin/pip install torch==2.13.0 segment-anything==1.0 numpy pillow
    /work/sam_ref_venv/bin/python tests/models/segment_anything/make_fixture.py

It builds a small random SAM (image 256, ViT depth 2, width 64, window 14 with block 1
global, decoder width 32), saves its ``state_dict`` with ``torch.save`` as ``sam_tiny.pth``
(a real zip checkpoint, loaded by the tests through jaxvision's importer), runs the
reference ``SamPredictor`` on a 60×80 image for each prompt case and saves inputs and every
stage's outputs to ``sam_tiny_reference.npz``. It also lists the ``vit_b`` state-dict keys
and shapes (model built on the meta device) in ``vit_b_state_dict.json``.

segment-anything imports torchvision only for resizing, and PyPI's torchvision does not load
beside the CPU torch, so a stand-in module doing the same with PIL is installed first.
"""

import json
import sys
import types
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def install_torchvision_stand_in() -> None:
    """``torchvision.transforms.functional.{resize, to_pil_image}`` on PIL (bilinear), as used
    by ``segment_anything.utils.transforms`` on uint8 HWC images."""
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.to_pil_image = lambda array: Image.fromarray(np.asarray(array))
    functional.resize = lambda img, size: img.resize((size[1], size[0]), Image.BILINEAR)
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    ops = types.ModuleType("torchvision.ops")
    ops.boxes = types.ModuleType("torchvision.ops.boxes")
    ops.boxes.batched_nms = ops.boxes.box_area = None  # used only by the automatic mask generator
    root = types.ModuleType("torchvision")
    root.transforms, root.ops = transforms, ops
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional, "torchvision.ops": ops,
                        "torchvision.ops.boxes": ops.boxes})


install_torchvision_stand_in()
from segment_anything import SamPredictor, sam_model_registry  # noqa: E402
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer  # noqa: E402

HERE = Path(__file__).parent


def tiny_sam() -> Sam:
    """The ``tiny`` config of jaxvision.models.segment_anything, with every tensor randomised
    (zero-initialised position tables and unit LayerNorms would hide layout bugs)."""
    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=256, patch_size=16, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True,
                                      use_rel_pos=True, window_size=14, global_attn_indexes=[1], out_chans=32),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(16, 16), input_image_size=(256, 256),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_depth=3,
                                 iou_head_hidden_dim=32,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=8)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    with torch.no_grad():
        for name, p in sam.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "norm4.weight", "norm_final_attn.weight")) \
                    or (p.dim() == 1 and "weight" in name):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1 or "pos" in name:
                p.copy_(0.2 * torch.randn_like(p))
    return sam.eval()


def main() -> None:
    sam = tiny_sam()
    torch.save(sam.state_dict(), HERE / "sam_tiny.pth")
    rng = np.random.default_rng(0)
    # A smooth 60×80 image with a bright blob: resized up to 192×256, then padded to 256².
    yy, xx = np.mgrid[0:60, 0:80]
    blob = 255 * np.exp(-((yy - 25) ** 2 + (xx - 45) ** 2) / 200.0)
    image = np.clip(np.stack([blob, 0.5 * blob + 40 * np.sin(xx / 7), 120 + 60 * np.cos(yy / 9)], -1)
                    + rng.normal(0, 8, (60, 80, 3)), 0, 255).astype(np.uint8)

    predictor = SamPredictor(sam)
    out: dict[str, np.ndarray] = {"image": image}
    with torch.no_grad():
        predictor.set_image(image)
        out["image_embedding"] = predictor.features.numpy()  # (1, 32, 16, 16)
        out["dense_pe"] = sam.prompt_encoder.get_dense_pe().numpy()  # (1, 32, 16, 16)
        first = None
        cases = {
            "point": dict(point_coords=np.array([[45.0, 25.0]]), point_labels=np.array([1]), multimask_output=True),
            "multipoint": dict(point_coords=np.array([[45.0, 25.0], [70.5, 10.25]]),
                               point_labels=np.array([1, 0]), multimask_output=False),
            "box": dict(box=np.array([30.0, 12.0, 62.0, 41.0]), multimask_output=True),
            "point_box": dict(point_coords=np.array([[45.0, 25.0]]), point_labels=np.array([1]),
                              box=np.array([30.0, 12.0, 62.0, 41.0]), multimask_output=False),
            "mask_point": dict(point_coords=np.array([[40.0, 30.0]]), point_labels=np.array([0]),
                               multimask_output=True),
        }
        for name, kwargs in cases.items():
            if name == "mask_point":
                kwargs["mask_input"] = first
            masks, iou, low_res = predictor.predict(**kwargs, return_logits=True)
            if first is None:
                first = low_res[np.argmax(iou)][None]
                out["mask_input"] = first
            for key, value in kwargs.items():
                if key != "mask_input":
                    out[f"{name}/{key}"] = np.asarray(value)
            coords = labels = box = mask = None
            if "point_coords" in kwargs:
                coords = torch.as_tensor(predictor.transform.apply_coords(kwargs["point_coords"], image.shape[:2]),
                                         dtype=torch.float)[None]
                labels = torch.as_tensor(kwargs["point_labels"], dtype=torch.int)[None]
            if "box" in kwargs:
                box = torch.as_tensor(predictor.transform.apply_boxes(kwargs["box"], image.shape[:2]),
                                      dtype=torch.float)
            if "mask_input" in kwargs:
                mask = torch.as_tensor(kwargs["mask_input"])[None]
            sparse, dense = sam.prompt_encoder(points=None if coords is None else (coords, labels), boxes=box,
                                               masks=mask)
            out[f"{name}/sparse"] = sparse.numpy()
            if mask is not None:
                out[f"{name}/dense"] = dense.numpy()
            out[f"{name}/low_res"], out[f"{name}/iou"], out[f"{name}/masks"] = low_res, iou, masks

        # Several prompts in one batched call (the reference's predict_torch).
        coords = torch.as_tensor(predictor.transform.apply_coords(np.array([[[45.0, 25.0]], [[20.0, 40.0]]]),
                                                                  image.shape[:2]), dtype=torch.float)
        labels = torch.ones((2, 1), dtype=torch.int)
        masks, iou, low_res = predictor.predict_torch(coords, labels, multimask_output=False, return_logits=True)
        out["batch/point_coords"] = np.array([[[45.0, 25.0]], [[20.0, 40.0]]])
        out["batch/low_res"], out["batch/iou"], out["batch/masks"] = low_res.numpy(), iou.numpy(), masks.numpy()
    np.savez_compressed(HERE / "sam_tiny_reference.npz", **out)

    with torch.device("meta"):
        vit_b = sam_model_registry["vit_b"]()
    listing = {k: list(v.shape) for k, v in vit_b.state_dict().items()}
    (HERE / "vit_b_state_dict.json").write_text(json.dumps(listing, indent=0) + "\n")
    print(f"wrote {HERE}: {sum(p.numel() for p in sam.parameters())} tiny params, {len(listing)} vit_b keys, "
          f"{sum(p.numel() for p in vit_b.parameters())} vit_b params")


if __name__ == "__main__":
    main()
