"""DLwP ch. 11.1–11.2: semantic segmentation from scratch, scored by foreground IoU.

Trains the book's strided-Conv2D / Conv2DTranspose segmenter (``get_model``) with per-pixel
sparse cross-entropy and RMSprop on trimaps in the Oxford-IIIT Pet layout (1 = foreground,
2 = background, 3 = outline → classes 0, 1, 2), keeps the best-``val_loss`` checkpoint, and
reports foreground IoU and mean IoU on the test split.

Run:
    python experiments/ch11_segmentation.py [--profile book|quick] [--data-dir DIR]
        [--image-size 200] [--epochs 50] [--batch-size 64] [--out runs/ch11_segmentation] [--seed 0]
        [--variant book|improved]

``book`` is the book's protocol (200×200, batch 64, 50 epochs) for a GPU; ``quick`` finishes
in ≤ 20 minutes on a 2-core CPU: 64×64 images, batch 16, 12 epochs.

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
"""

from pathlib import Path

import numpy as np
from flax import nnx
from PIL import Image

import _common
from jaxvision.data import load_oxford_pet, oxford_pet_pairs
from jaxvision.data.image_io import load_rgb, open_image
from jaxvision.layers import AugmentBatch, RandomFlip, RandomRotation, RandomZoom
from jaxvision.models import build_model
from jaxvision.optimizers import Adam
from jaxvision.train import IoU, MeanIoU, evaluate, fit, load_model, plot_history, predict, save_mask_grid

NAME = "ch11_segmentation"
PROFILES = {"book": {"epochs": 50, "image_size": 200, "batch_size": 64},
            "quick": {"epochs": 12, "image_size": 64, "batch_size": 16}}
LEARNING_RATES = {"book": 1e-3, "quick": 1e-3}  # Keras Adam default


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


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--variant", choices=("book", "improved"), default="book",
                   help="improved: BatchNormalization + residual connections + joint image/mask augmentation")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images of each split (smoke tests)")
    p.add_argument("--figures-only", action="store_true", help="write the book's figures 11.3 and 11.4 and stop")
    args = _common.apply_profile(p.parse_args(argv), PROFILES)
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

    augment = None
    if args.variant == "improved":
        rngs = nnx.Rngs(augment=args.seed)
        augment = AugmentBatch([RandomFlip("horizontal", rngs=rngs), RandomRotation(0.1, rngs=rngs),
                                RandomZoom(0.2, rngs=rngs)], masks=True).apply_pair
    builder = "segmentation_model" if args.variant == "book" else "residual_segmentation_model"
    model = build_model(builder, image_size=list(size), num_classes=3, seed=args.seed)
    checkpoint = args.out / "checkpoint"
    with _common.Timer() as timer:
        history = fit(model, train, validation_data=val, augment=augment, epochs=args.epochs, batch_size=args.batch_size,
                      loss="sparse_categorical_crossentropy", metrics=iou_metrics(), seed=args.seed,
                      optimizer=Adam(learning_rate=args.learning_rate or LEARNING_RATES[args.profile]),
                      callbacks=_common.callbacks(args, monitor="val_loss", save_best_only=True))
    best = load_model(checkpoint)
    scores = evaluate(best, test, loss="sparse_categorical_crossentropy", metrics=iou_metrics(), batch_size=16)
    _common.say(f"Test foreground IoU: {scores['foreground_iou']:.4f}  mean IoU: {scores['mean_iou']:.4f}")
    plot_history(history, args.out / "curves.png", metrics=("foreground_iou",))
    shown = slice(0, min(6, len(x_test)))
    save_mask_grid(x_test[shown], y_test[shown], predict(best, x_test[shown], batch_size=8), args.out / "predictions.png")
    metrics = {"experiment": name, "model": builder, "test_foreground_iou": scores["foreground_iou"], "test_mean_iou": scores["mean_iou"],
               "test_loss": scores["loss"], "best_val_loss": min(history.history["val_loss"]),
               "history": history.history, "epochs": args.epochs, "image_size": args.image_size,
               "batch_size": args.batch_size, "variant": args.variant, "profile": args.profile,
               "seconds": timer.seconds, "train_images": len(train[0]),
               "test_images": len(test[0]), "seed": args.seed, "checkpoint": checkpoint}
    return _common.finish(args, metrics)


if __name__ == "__main__":
    _common.run(main)
