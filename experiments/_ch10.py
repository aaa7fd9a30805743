"""Plumbing shared by the ch. 10 interpretation scripts: flags, the model (a training
checkpoint's, the pretrained ImageNet MobileNet, or the book's Xception from ``--weights``), the
image size, and images loaded the way the training pipeline loads them."""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import _common
from jaxvision.data.image_io import load_rgb, open_image, resize

DEFAULT_IMAGE_SIZE = 180  # the book's dogs-vs-cats size, when the checkpoint folder does not say
PRETRAINED_ALPHA = 0.75  # the MobileNet whose ImageNet weights ship offline (with their top)
PRETRAINED_IMAGE_SIZE = {"mobilenet": 224, "xception": 299}  # the sizes their weights were trained at
BACKBONES = tuple(PRETRAINED_IMAGE_SIZE)


def parser(doc: str, name: str, checkpoint: str | None) -> argparse.ArgumentParser:
    """Common flags; ``checkpoint=None`` makes the pretrained ImageNet MobileNet the default model."""
    p = _common.base_parser(doc, name)
    p.add_argument("--checkpoint", type=Path, default=None if checkpoint is None else Path(checkpoint),
                   help="a jaxvision.train.ModelCheckpoint directory"
                        + ("" if checkpoint else f" (default: MobileNet α {PRETRAINED_ALPHA} with ImageNet weights)"))
    p.add_argument("--layer", action="append", default=None, help="layer name; repeat for several")
    p.add_argument("--image", action="append", type=Path, default=None, help="image file; repeat for several")
    p.add_argument("--image-size", type=int, default=None,
                   help=f"default: the size the checkpoint was trained at, else {DEFAULT_IMAGE_SIZE}")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="Dogs vs Cats folder for default images (default $JAXVISION_DATA/dogs_vs_cats_small)")
    p.add_argument("--backbone", choices=BACKBONES, default=None,
                   help="the pretrained ImageNet model instead of a checkpoint: MobileNet α 0.75 (Keras's weights, "
                        "offline) or the book's Xception (with --weights)")
    p.add_argument("--weights", type=Path, default=None,
                   help="the backbone's weights: Keras's xception_weights_tf_dim_ordering_tf_kernels[_notop].h5, a "
                        ".weights.h5 or a KerasHub xception_41_imagenet preset directory (default for MobileNet: "
                        "imagenet)")
    return p


def check_backbone(args: argparse.Namespace, default_checkpoint: str | None = None) -> None:
    """``--backbone``/``--weights`` agree with each other and with a ``--checkpoint`` given."""
    if args.backbone and args.checkpoint not in (None, default_checkpoint and Path(default_checkpoint)):
        raise _common.UsageError("--backbone and --checkpoint: pass one model, not both")
    if args.weights is not None and args.backbone is None:
        raise _common.UsageError("--weights needs --backbone mobilenet|xception")
    if args.backbone == "xception" and args.weights is None:
        raise _common.UsageError("--backbone xception needs --weights PATH: no ImageNet Xception weights are "
                                 "available offline (Keras's xception_weights_tf_dim_ordering_tf_kernels.h5 or a "
                                 "KerasHub xception_41_imagenet preset directory)")


def load_model(checkpoint: Path):
    from jaxvision.train import load_model as load  # training code only when a checkpoint is read

    return load(checkpoint)


def pretrained_mobilenet(weights: str | Path = "imagenet", **kwargs):
    """Keras's MobileNet α 0.75 with its ImageNet weights and top (offline: the TF.js copy in
    $JAXVISION_DATA/pretrained/); it takes ``preprocess_input`` images (x / 127.5 − 1)."""
    from jaxvision.applications import MobileNet

    return MobileNet(alpha=PRETRAINED_ALPHA, weights=weights, **kwargs)


def pretrained(args: argparse.Namespace, **kwargs):
    """The ``--backbone`` model (default MobileNet) with its ImageNet weights: the MobileNet
    above (or its ``--weights``), or the book's Xception from ``--weights``, which also takes
    ``preprocess_input`` images."""
    check_backbone(args)
    if args.backbone == "xception":
        from jaxvision.applications import Xception

        return Xception(weights=args.weights, **kwargs)
    return pretrained_mobilenet(args.weights or "imagenet", **kwargs)


def pretrained_name(args: argparse.Namespace) -> str:
    if args.backbone == "xception":
        return f"Xception(weights={str(args.weights)!r})"
    return f"MobileNet(alpha={PRETRAINED_ALPHA}, weights={str(args.weights or 'imagenet')!r})"


def image_size(args: argparse.Namespace) -> int:
    from jaxvision.train.checkpoint import recorded_image_size

    recorded = recorded_image_size(args.checkpoint)
    return args.image_size or (recorded and recorded[0]) or DEFAULT_IMAGE_SIZE


def test_images(args: argparse.Namespace, label: str, count: int) -> list[Path]:
    """The first ``count`` files, in sorted order, of the Dogs vs Cats test folder ``label``."""
    folder = (args.data_dir or _common.data_root() / "dogs_vs_cats_small") / "test" / label
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if len(files) < count:
        raise FileNotFoundError(f"need {count} images in {folder} (found {len(files)}); "
                                "set JAXVISION_DATA or pass --image")
    return files[:count]


def load_photo(path: Path, size: int) -> np.ndarray:
    """float32 (size, size, 3) in [0, 255] as ``keras.utils.load_img(path, target_size=(size,
    size), interpolation="bilinear")`` gives it (Pillow's filter, antialiased when shrinking):
    how the Keras reference numbers for the ImageNet models were computed."""
    with open_image(path) as img:
        return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32)


def load_image(path: Path, size: int) -> np.ndarray:
    """float32 (size, size, 3) in [0, 255], decoded by Pillow and resized bilinearly like
    ``image_dataset_from_directory`` (the models rescale inside)."""
    return resize(load_rgb(path), (size, size))
