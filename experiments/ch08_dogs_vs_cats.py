"""DLwP listings 8.7–8.22: Dogs vs Cats on 2,000 training images, from scratch
(book: 78.6% test accuracy) and with data augmentation + dropout (book: 83.9%).

Run:
    python experiments/ch08_dogs_vs_cats.py --variant scratch   [--profile book|quick]
    python experiments/ch08_dogs_vs_cats.py --variant augmented [--profile book|quick]
Other flags: --data-dir DIR (default $JAXVISION_DATA/dogs_vs_cats_small), --test-dir DIR
(default <data-dir>/test), --epochs, --image-size, --batch-size, --out, --seed.

The augmented variant applies listing 8.18's augmentation in the data pipeline by default
(mapped over the training batches and prefetched, the book's chosen option);
``--augmentation model`` puts it in the model as listing 8.20 writes it. Both train on the same
augmented batches for the same ``--seed``.

``book`` is the book's protocol (180×180, batch 64, 50 / 100 epochs) for a GPU; ``quick``
finishes in ≤ 20 minutes on a 2-core CPU: 80×80 images (the convnet needs ≥ 78 px; the
source photos are 128 px), batch 32, 20 / 80 epochs (augmentation needs more epochs to pay off;
80 take 14 minutes on the idle 2-core CPU).
The best-``val_loss`` checkpoint is evaluated on the test split.
Figures: ``figure_8_8.png`` (the first four cats and dogs of the training split) and, for the
augmented variant, ``figure_8_10.png`` (nine augmentations of the first training cat by the
book's ``data_augmentation``, at 180 px); ``--figures-only`` writes them and stops. A killed run resumes from
``<out>/backup`` when started again with the same flags; a finished one (``<out>/metrics.json``)
is not trained again unless ``--force``. Logs: ``<out>/log.csv`` and TensorBoard's ``<out>/logs``.
"""

import argparse
from pathlib import Path

import numpy as np
import optax

import _common
from jaxvision.data import image_dataset_from_directory
from jaxvision.data.image_io import load_rgb, resize
from jaxvision.models import build_model
from jaxvision.models.augmentation import data_augmentation
from jaxvision.models.rngs import model_rngs
from jaxvision.train import PipelineAugmentation, evaluate, fit, plot_history, restore, save_image_grid

PROFILES = {
    "scratch": {"book": {"epochs": 50, "image_size": 180, "batch_size": 64},
                "quick": {"epochs": 20, "image_size": 80, "batch_size": 32}},
    "augmented": {"book": {"epochs": 100, "image_size": 180, "batch_size": 64},
                  "quick": {"epochs": 80, "image_size": 80, "batch_size": 32}},
}


def add_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--test-dir", type=Path, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images of each split (smoke tests)")
    return p


def load_split(directory: Path, image_size: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split as arrays: small enough to live on the accelerator."""
    data = image_dataset_from_directory(directory, image_size=(image_size, image_size),
                                        label_mode="binary", shuffle=False, batch_size=64)
    images, labels = data.as_arrays()
    if limit is not None:  # keep both classes: take from each end of the class-sorted list
        keep = np.r_[0:limit // 2, len(images) - (limit - limit // 2):len(images)]
        images, labels = images[keep], labels[keep]
    return images, labels


def load_splits(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train/validation from ``--data-dir``, test from ``--test-dir``, at ``--image-size``."""
    data_dir = args.data_dir or _common.data_root() / "dogs_vs_cats_small"
    test_dir = args.test_dir or data_dir / "test"
    return {split: load_split(d, args.image_size, args.limit)
            for split, d in (("train", data_dir / "train"), ("validation", data_dir / "validation"),
                             ("test", test_dir))}


def fit_and_test(args: argparse.Namespace, name: str, model, splits: dict, *, model_name: str,
                 optimizer: str | optax.GradientTransformation = "adam", train_data=None, **extra) -> dict:
    """Fit ``model`` on ``splits["train"]`` (or the batches ``train_data`` makes of it) keeping
    the best-val_loss checkpoint (resuming from ``<out>/backup``), score that checkpoint on
    ``splits["test"]``, write curves and metrics.json (with ``extra`` added)."""
    _common.say(f"{name}: {args.profile} profile, {args.epochs} epochs at {args.image_size}×{args.image_size}, "
                f"{len(splits['train'][0])} training images")
    checkpoint = args.out / "checkpoint"
    with _common.Timer() as timer:
        history = fit(model, train_data or splits["train"], validation_data=splits["validation"], epochs=args.epochs,
                      batch_size=args.batch_size, loss="binary_crossentropy", optimizer=optimizer,
                      metrics=["accuracy"], seed=args.seed,
                      callbacks=_common.callbacks(args, monitor="val_loss", save_best_only=True))
    best = restore(checkpoint, model)
    test = evaluate(best, splits["test"], loss="binary_crossentropy", metrics=["accuracy"], batch_size=64)
    _common.say(f"Test accuracy: {test['accuracy']:.4f}")
    plot_history(history, args.out / "curves.png", metrics=("accuracy",))
    metrics = {"experiment": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "best_val_loss": min(history.history["val_loss"]), "history": history.history,
               "epochs": args.epochs, "image_size": args.image_size, "batch_size": args.batch_size,
               "profile": args.profile, "seconds": timer.seconds,
               "train_images": len(splits["train"][0]), "test_images": len(splits["test"][0]),
               "model": model_name, "seed": args.seed, "checkpoint": checkpoint, **extra}
    return _common.finish(args, metrics)


def book_figures(args: argparse.Namespace, augmented: bool, size: int = 180) -> list[Path]:
    """Figure 8.8 (samples) and, with augmentation, figure 8.10 (nine augmentations)."""
    from flax import nnx

    train = (args.data_dir or _common.data_root() / "dogs_vs_cats_small") / "train"
    if not train.is_dir():  # the loader's message, before the loader runs
        raise FileNotFoundError(f"image directory {train} does not exist")
    files = {label: sorted((train / label).iterdir())[:4] for label in ("cat", "dog")}
    samples = [resize(load_rgb(f), (size, size)) for label in files for f in files[label]]
    written = [save_image_grid(samples, args.out / "figure_8_8.png", titles=[f.name for label in files for f in files[label]],
                               columns=4)]
    if augmented:
        augment = data_augmentation(nnx.Rngs(augment=args.seed))
        augment.train()  # augmentation layers are active in training only, as in Keras
        tiles = [np.asarray(augment(samples[0][None]))[0] for _ in range(9)]
        written.append(save_image_grid(tiles, args.out / "figure_8_10.png"))
    return written


def add_augmentation_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--augmentation", choices=("pipeline", "model"), default="pipeline",
                   help="where listing 8.18's augmentation runs: mapped over the training batches and prefetched "
                        "(the book's choice for its mini-Xception) or as the model's first layer (listing 8.20's); "
                        "the same batches for the same --seed")
    return p


def train_and_test(args: argparse.Namespace, name: str, model_name: str, *, augmented: bool = False,
                   **model_kwargs) -> dict:
    """Train ``model_name`` on train/, keep the best val_loss checkpoint, score it on test/.
    ``augmented``: with listing 8.18's augmentation, in the data pipeline or in the model
    (``args.augmentation``)."""
    if (done := _common.finished(args)) is not None:
        return done
    splits = load_splits(args)
    in_pipeline = augmented and args.augmentation == "pipeline"
    train_data = None
    if in_pipeline:
        train_data = PipelineAugmentation(*splits["train"], data_augmentation(model_rngs(args.seed)),
                                          batch_size=args.batch_size, seed=args.seed)
    model = build_model(model_name, seed=args.seed, **model_kwargs,
                        **augmentation_kwargs(model_name, augmented, in_model=not in_pipeline))
    return fit_and_test(args, name, model, splits, model_name=model_name, optimizer="adam", train_data=train_data,
                        augmentation=args.augmentation if augmented else None)


def augmentation_kwargs(model_name: str, augmented: bool, in_model: bool) -> dict:
    """The builder's arguments for augmentation (and, for listing 8.20's convnet, dropout)."""
    if model_name == "mini_xception":
        return {"augmented": augmented and in_model}
    return {"augmented": augmented, "augment_in_model": in_model} if augmented else {}


def main(argv: list[str] | None = None) -> dict:
    p = add_flags(_common.parser(__doc__, "ch08_dogs_vs_cats"))
    p.add_argument("--variant", choices=tuple(PROFILES), default="scratch")
    p.add_argument("--figures-only", action="store_true", help="write the book's figures 8.8 (and 8.10) and stop")
    add_augmentation_flag(p)
    args = p.parse_args(argv)
    args = _common.apply_profile(args, PROFILES[args.variant])
    name = f"ch08_dogs_vs_cats_{args.variant}"
    if args.out == Path("runs") / "ch08_dogs_vs_cats":
        args.out = Path("runs") / name
    augmented = args.variant == "augmented"
    figures = book_figures(args, augmented)
    if args.figures_only:
        return {"experiment": name, "figures": [str(f) for f in figures]}
    return train_and_test(args, name, "dogs_vs_cats_convnet", augmented=augmented)


if __name__ == "__main__":
    _common.run(main)
