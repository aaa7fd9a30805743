"""DLwP ch. 11.1–11.2: semantic segmentation from scratch, scored by foreground IoU beside the
constant-mask baseline.

Trains the book's strided-Conv2D / Conv2DTranspose segmenter (``get_model``) with per-pixel
sparse cross-entropy and Adam, as the book compiles it, on trimaps in the Oxford-IIIT Pet
layout (1 = foreground, 2 = background, 3 = outline → classes 0, 1, 2), keeps the
best-``val_loss`` checkpoint, and reports foreground IoU and mean IoU on the test split.

Run:
    python experiments/ch11_segmentation.py [--profile book|quick] [--data-dir DIR]
        [--image-size 200] [--epochs 50] [--batch-size 64] [--learning-rate 1e-3]
        [--out runs/ch11_segmentation] [--seed 0] [--variant book|improved|unet]
        [--frozen-epochs 8] [--fine-tuning-learning-rate 1e-4]

``book`` is the book's protocol (200×200, batch 64, 50 epochs) for a GPU; ``quick`` trains on
a 2-core CPU: 64×64 images, batch 16, 25 epochs (the validation loss bottoms out near epoch
20 and rises after it).

Every run also scores the **constant-mask baseline**: the training masks' per-pixel foreground
frequency, thresholded where the validation IoU is best, predicted for every test image
(`jaxvision.train.constant_mask_baseline`). A model that learned where horses usually are
but not what they look like scores about as well; ``metrics.json`` records both, and
``predictions.png`` draws the baseline beside each prediction (with the prediction's IoU).

``--data-dir`` defaults to ``$JAXVISION_DATA/weizmann_horse`` (327 horse photos in the Pet
layout; point it at a real Oxford-IIIT Pet download to train on pets). Without
``annotations/trainval.txt``/``test.txt`` the book's seeded shuffle holds out 1,000 images
for test. The validation set is the last 15% of the training split (the book holds out 1,000
of 7,390 images).

Figures 11.3 and 11.4 (``figure_11_3.png``, ``figure_11_4.png``): the tenth image of the
sorted file list, as the book shows ``input_img_paths[9]``, and its trimap in grey as the
book's ``display_target`` draws it (``(mask - 1) * 127``: foreground black, background grey,
outline white), both at the file's size; ``--figures-only`` writes them and stops.

``--variant improved`` is a clearly labelled second variant with the remedies the book
teaches: batch normalization and residual connections (``residual_segmentation_model``) and
the flip / rotation / zoom of listing 8.18 applied to image and mask together, inside the
jitted train step (the arrays stay on the accelerator). It writes to
``runs/ch11_segmentation_improved``.

``--variant unet`` goes beyond the book: ``mobilenet_unet``, a U-Net decoder on the ImageNet
MobileNet v1 (``--alpha 0.75``, offline from ``$JAXVISION_DATA/pretrained/``), trained like
ch. 8's pretrained classifier — the decoder on the frozen encoder (``--frozen-epochs``, Adam
1e-3), then everything but the encoder's BatchNormalization (``--epochs``, Adam 1e-4) — with
the same joint augmentation; ``quick``: 160×160, batch 16, 8 + 12 epochs. It also writes
``grad_cam.png``: Grad-CAM of the horse score summed over each image's predicted horse pixels.
It writes to ``runs/ch11_segmentation_unet``.
"""

import argparse
from pathlib import Path

import numpy as np
from flax import nnx
from matplotlib.figure import Figure
from PIL import Image

import _common
from jaxvision.applications import load_encoder_weights
from jaxvision.data import load_oxford_pet, oxford_pet_pairs
from jaxvision.data.image_io import load_rgb, open_image
from jaxvision.interpret import grad_cam, overlay_heatmap
from jaxvision.layers import AugmentBatch, RandomFlip, RandomRotation, RandomZoom, unfreeze_except_batchnorm
from jaxvision.models import build_model
from jaxvision.optimizers import Adam
from jaxvision.train import (ConstantMaskBaseline, IoU, MeanIoU, class_iou, constant_mask_baseline, evaluate, fit, load_model,
                             plot_history, predict, restore, save_mask_grid)

NAME = "ch11_segmentation"
PROFILES = {"book": {"epochs": 50, "image_size": 200, "batch_size": 64},
            "quick": {"epochs": 25, "image_size": 64, "batch_size": 16}}
# The U-Net trains its decoder on the frozen encoder (frozen_epochs), then fine-tunes everything but
# the encoder's BatchNormalization (epochs), as ch. 8 fine-tunes a pretrained classifier.
UNET_PROFILES = {"book": {"frozen_epochs": 20, "epochs": 20, "image_size": 224, "batch_size": 32},
                 "quick": {"frozen_epochs": 8, "epochs": 12, "image_size": 160, "batch_size": 16}}
LEARNING_RATE = 1e-3  # Keras's Adam default, as the book compiles the segmenter
FINE_TUNING_LEARNING_RATE = 1e-4
GRAD_CAM_LAYER = "up2_relu"  # the U-Net's decoder at stride 8: coarse enough to show what drives the mask


def iou_metrics() -> list:
    return [IoU(num_classes=3, target_class_ids=(0,), sparse_y_true=True, sparse_y_pred=False, name="foreground_iou"),
            MeanIoU(num_classes=3, sparse_y_true=True, sparse_y_pred=False, name="mean_iou")]


def book_figures(data_dir: Path, out: Path) -> list[Path]:
    """Figures 11.3 (a sample image) and 11.4 (its trimap in grey) at the files' sizes."""
    pairs = sorted(oxford_pet_pairs(data_dir, split=None))
    image_path, trimap_path = pairs[min(9, len(pairs) - 1)]
    with open_image(trimap_path) as trimap:
        grey = (np.asarray(trimap.convert("L"), np.int16) - 1) * 127
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(load_rgb(image_path).astype(np.uint8)).save(out / "figure_11_3.png")
    Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(out / "figure_11_4.png")
    return [out / "figure_11_3.png", out / "figure_11_4.png"]


def augmentation(seed: int):
    """Listing 8.18's flip / rotation / zoom, applied to image and mask together."""
    rngs = nnx.Rngs(augment=seed)
    return AugmentBatch([RandomFlip("horizontal", rngs=rngs), RandomRotation(0.1, rngs=rngs),
                         RandomZoom(0.2, rngs=rngs)], masks=True).apply_pair


def fit_unet(args: argparse.Namespace, train: tuple, val: tuple) -> tuple[nnx.Module, dict]:
    """The pretrained-encoder U-Net: decoder on the frozen ImageNet encoder, then fine-tuning."""
    model = load_encoder_weights(build_model("mobilenet_unet", num_classes=3, alpha=args.alpha, seed=args.seed),
                                 args.weights or "imagenet")
    model.encoder.trainable = False
    frozen = argparse.Namespace(**{**vars(args), "out": args.out / "frozen"})
    history = fit(model, train, validation_data=val, augment=augmentation(args.seed), epochs=args.frozen_epochs,
                  batch_size=args.batch_size, loss="sparse_categorical_crossentropy", metrics=iou_metrics(),
                  seed=args.seed, optimizer=Adam(args.learning_rate),
                  callbacks=_common.callbacks(frozen, monitor="val_loss", save_best_only=True))
    restore(frozen.out / "checkpoint", model)
    unfreeze_except_batchnorm(model.encoder)
    tuned = fit(model, train, validation_data=val, augment=augmentation(args.seed + 1), epochs=args.epochs,
                batch_size=args.batch_size, loss="sparse_categorical_crossentropy", metrics=iou_metrics(),
                seed=args.seed + 1, optimizer=Adam(args.fine_tuning_learning_rate),
                callbacks=_common.callbacks(args, monitor="val_loss", save_best_only=True))
    logs = {k: history.history[k] + tuned.history[k] for k in tuned.history}
    return model, logs


def grad_cam_figure(model: nnx.Module, images: np.ndarray, path: Path) -> Path:
    """Grad-CAM of the foreground score summed over each image's predicted foreground."""
    heatmaps = grad_cam(model, images, GRAD_CAM_LAYER, class_index=0)
    figure = Figure(figsize=(3 * len(images), 3))
    for i, (image, heatmap) in enumerate(zip(images, heatmaps, strict=True)):
        axes = figure.add_subplot(1, len(images), i + 1)
        axes.imshow(overlay_heatmap(image, heatmap))
        axes.set_title(f"Grad-CAM {GRAD_CAM_LAYER}")
        axes.axis("off")
    figure.savefig(path, dpi=80)
    return path


def prediction_figures(model: nnx.Module, test: tuple[np.ndarray, np.ndarray], baseline: ConstantMaskBaseline,
                       out: Path, with_grad_cam: bool = False) -> list[Path]:
    """``predictions.png``: six test images, their masks, the predictions with their foreground IoU,
    and the constant baseline; with ``with_grad_cam``, ``grad_cam.png`` for the same images."""
    shown = slice(0, min(6, len(test[0])))
    images, masks = test[0][shown], test[1][shown]
    predicted = predict(model, images, batch_size=8).argmax(-1)
    titles = [f"IoU {class_iou(t, q, 0):.2f}" for t, q in zip(masks, predicted, strict=True)]
    figures = [save_mask_grid(images, masks, predicted, out / "predictions.png", baseline=baseline.mask, titles=titles)]
    if with_grad_cam:
        figures.append(grad_cam_figure(model, images, out / "grad_cam.png"))
    return figures


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--variant", choices=("book", "improved", "unet"), default="book",
                   help="improved: BatchNormalization + residual connections + joint image/mask augmentation; "
                        "unet: ImageNet MobileNet encoder + U-Net decoder")
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="Adam's (unet: on the frozen encoder)")
    p.add_argument("--fine-tuning-learning-rate", type=float, default=FINE_TUNING_LEARNING_RATE,
                   help="unet: Adam's once the encoder is unfrozen")
    p.add_argument("--frozen-epochs", type=int, default=None, help="unet: epochs on the frozen encoder")
    p.add_argument("--alpha", type=float, default=0.75, help="unet: the MobileNet encoder's width multiplier")
    p.add_argument("--weights", default=None, help="unet: encoder weights file (default: imagenet)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images of each split (smoke tests)")
    p.add_argument("--figures-only", action="store_true", help="write the book's figures 11.3 and 11.4 and stop")
    args = p.parse_args(argv)
    args = _common.apply_profile(args, UNET_PROFILES if args.variant == "unet" else PROFILES)
    name = NAME if args.variant == "book" else f"{NAME}_{args.variant}"
    if args.out == Path("runs") / NAME:
        args.out = Path("runs") / name
    data_dir = args.data_dir or _common.data_root() / "weizmann_horse"
    figures = book_figures(data_dir, args.out)
    if args.figures_only:
        return {"experiment": name, "figures": [str(f) for f in figures]}
    if (done := _common.finished(args)) is not None:
        return done
    size = (args.image_size, args.image_size)
    x_trainval, y_trainval = load_oxford_pet(data_dir, image_size=size, split="trainval")[:2]
    x_test, y_test = load_oxford_pet(data_dir, image_size=size, split="test")[:2]
    if args.limit is not None:
        x_trainval, y_trainval, x_test, y_test = (a[:args.limit] for a in (x_trainval, y_trainval, x_test, y_test))
    num_val = max(1, round(0.15 * len(x_trainval)))
    train = (x_trainval[:-num_val], y_trainval[:-num_val].astype(np.int32))
    val = (x_trainval[-num_val:], y_trainval[-num_val:].astype(np.int32))
    test = (x_test, y_test.astype(np.int32))
    _common.say(f"{name}: {args.profile} profile, {args.epochs} epochs at {args.image_size}×{args.image_size}, "
                f"{len(train[0])} train / {len(val[0])} val / {len(test[0])} test images")
    baseline = constant_mask_baseline(train[1], val[1])
    baseline_iou = baseline.score(test[1])
    _common.say(f"Constant-mask baseline (mean training mask ≥ {baseline.threshold:.2f}): "
                f"test foreground IoU {baseline_iou:.4f}")

    checkpoint = args.out / "checkpoint"
    extra = {}
    with _common.Timer() as timer:
        if args.variant == "unet":
            _, logs = fit_unet(args, train, val)
            builder = "mobilenet_unet"
            extra = {"frozen_epochs": args.frozen_epochs, "alpha": args.alpha,
                     "learning_rates": [args.learning_rate, args.fine_tuning_learning_rate]}
        else:
            builder = "segmentation_model" if args.variant == "book" else "residual_segmentation_model"
            model = build_model(builder, image_size=list(size), num_classes=3, seed=args.seed)
            logs = fit(model, train, validation_data=val, augment=augmentation(args.seed) if args.variant == "improved"
                       else None, epochs=args.epochs, batch_size=args.batch_size,
                       loss="sparse_categorical_crossentropy", metrics=iou_metrics(), seed=args.seed,
                       optimizer=Adam(args.learning_rate),
                       callbacks=_common.callbacks(args, monitor="val_loss", save_best_only=True)).history
            extra = {"learning_rate": args.learning_rate}
    best = load_model(checkpoint)
    scores = evaluate(best, test, loss="sparse_categorical_crossentropy", metrics=iou_metrics(), batch_size=16)
    _common.say(f"Test foreground IoU: {scores['foreground_iou']:.4f} (constant-mask baseline {baseline_iou:.4f})  "
                f"mean IoU: {scores['mean_iou']:.4f}")
    plot_history(logs, args.out / "curves.png", metrics=("foreground_iou",))
    prediction_figures(best, test, baseline, args.out, with_grad_cam=args.variant == "unet")
    metrics = {"experiment": name, "model": builder, "test_foreground_iou": scores["foreground_iou"],
               "test_mean_iou": scores["mean_iou"], "baseline_test_foreground_iou": baseline_iou,
               "baseline_threshold": baseline.threshold, "baseline_val_foreground_iou": baseline.val_iou,
               "iou_over_baseline": scores["foreground_iou"] - baseline_iou,
               "test_loss": scores["loss"], "best_val_loss": min(logs["val_loss"]),
               "history": logs, "epochs": args.epochs, "image_size": args.image_size,
               "batch_size": args.batch_size, "variant": args.variant, "profile": args.profile,
               "seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "train_images": len(train[0]),
               "test_images": len(test[0]), "seed": args.seed, "checkpoint": checkpoint, **extra}
    return _common.finish(args, metrics)


if __name__ == "__main__":
    _common.run(main)
