"""DLwP listings 8.25–8.31: Dogs vs Cats with a pretrained ImageNet backbone — feature
extraction (book, Xception: 98.1–98.4% test accuracy), feature extraction with augmentation,
then fine-tuning (book: 98.6%).

Run:
    python experiments/ch08_pretrained.py --variant features  [--profile book|quick]
    python experiments/ch08_pretrained.py --variant augmented [--profile book|quick]
    python experiments/ch08_pretrained.py --variant finetune  [--profile book|quick]
        [--from runs/ch08_pretrained_augmented/checkpoint]
Backbone: ``--backbone mobilenet`` (default; ``--alpha 0.75``, ImageNet weights, offline from
$JAXVISION_DATA/pretrained/) or ``--backbone xception --weights PATH`` (a Keras/KerasHub
Xception file: no copy is available offline), or a depthwise/modern family by its registry name
(``mobilenet_v2``, ``mobilenet_v3_small``, ``efficientnet_b0``, ``convnext_tiny``…) with
``--weights PATH`` (the family's Keras ``.weights.h5`` or ``.h5`` file without the top; none is
available offline) or ``--weights none``: random initial weights, the backbone trained with the
head instead of frozen (from scratch; ``augmented`` only). The preprocessing layer follows the
family: x / 127.5 − 1 for mode "tf" (MobileNet, MobileNetV2, Xception, NASNet), nothing where
the model rescales the pixels itself (MobileNetV3, EfficientNet, EfficientNetV2, ConvNeXt).
Other flags: --data-dir DIR (default
$JAXVISION_DATA/dogs_vs_cats_small), --test-dir DIR, --epochs, --image-size, --batch-size,
--out, --seed, --weights PATH (MobileNet too).

* ``features`` (listings 8.25–8.27): the frozen backbone maps every image once, with a jitted
  ``predict``, to its last feature map; a head GAP → Dense 256 relu → Dropout 0.25 → Dense 1
  sigmoid trains on those features with Adam, 10 epochs.
* ``augmented`` (listings 8.28–8.30): listing 8.18's augmentation, preprocessing, the frozen
  backbone and the book's end-to-end head (GAP → Dense 256 without activation → Dropout 0.25 →
  Dense 1 sigmoid), trained end to end, 30 epochs.
* ``finetune`` (listing 8.31): starts from ``augmented``'s best checkpoint, unfreezes the
  backbone except its BatchNormalization layers, Adam 1e-5, 30 epochs.

Each keeps the best-``val_loss`` checkpoint and scores it on the test split. ``book`` is the
book's protocol at 180×180 for a GPU. ``quick`` fits ≤ 20 minutes per variant on a 2-core CPU,
still at 180×180 (the size of the Keras reference; 128-px features scored lower) with
10 / 5 / 2 epochs: the frozen backbone's forward pass over 3,000 images per epoch (training
and validation) sets the augmented budget, the backward pass through it the fine-tuning one.
A killed run resumes from ``<out>/backup`` when started again with the same flags.
"""

import argparse
from pathlib import Path

from flax import nnx

import _common
from ch08_dogs_vs_cats import add_flags, fit_and_test, load_splits
from jaxvision.layers import (Dense, Dropout, GlobalAveragePooling2D, Rescaling, count_params,
                              unfreeze_except_batchnorm)
from jaxvision.models import Model, Sequential, build_model
from jaxvision.models.augmentation import data_augmentation
from jaxvision.models.rngs import model_rngs
from jaxvision.optimizers import Adam
from jaxvision.train import predict, restore

VARIANTS = ("features", "augmented", "finetune")
# The registered depthwise and modern families (issue 30): built with build_model, Keras weights files.
MODERN_FAMILIES = ("mobilenet_v2", "mobilenet_v3", "efficientnet", "efficientnet_v2", "convnext", "nasnet")
PROFILES = {
    "features": {"book": {"epochs": 10, "image_size": 180, "batch_size": 32},
                 "quick": {"epochs": 10, "image_size": 180, "batch_size": 32}},
    "augmented": {"book": {"epochs": 30, "image_size": 180, "batch_size": 64},
                  "quick": {"epochs": 5, "image_size": 180, "batch_size": 32}},
    "finetune": {"book": {"epochs": 30, "image_size": 180, "batch_size": 64},
                 "quick": {"epochs": 2, "image_size": 180, "batch_size": 32}},
}


def modern_backbones() -> list[str]:
    """Registry names of the modern families' constructors (``efficientnet_b0``…)."""
    from jaxvision.models.registry import registered

    return sorted(name for name, module in registered().items()
                  if module.rsplit(".", 1)[-1] in MODERN_FAMILIES and not name.startswith("mobilenet_unet"))


def from_scratch(args: argparse.Namespace) -> bool:
    """``--weights none``: the backbone starts from random weights and trains with the head."""
    return getattr(args, "weights", None) == "none"


def backbone(args: argparse.Namespace) -> Model:
    """The pretrained convolutional base without its classifier."""
    if args.backbone == "mobilenet":
        from jaxvision.applications import MobileNet

        return MobileNet(alpha=args.alpha, include_top=False, weights=args.weights or "imagenet")
    if args.weights is None:
        raise _common.UsageError(f"--backbone {args.backbone} needs --weights PATH: no ImageNet weights for it are "
                                 "available offline (Keras's file without the top, e.g. "
                                 "xception_weights_tf_dim_ordering_tf_kernels_notop.h5 or a KerasHub preset "
                                 "directory for Xception), or --weights none to train it from scratch")
    if args.backbone == "xception":
        from jaxvision.applications import Xception

        return Xception(include_top=False, weights=None if from_scratch(args) else args.weights)
    return build_model(args.backbone, include_top=False, **({} if from_scratch(args) else {"weights": args.weights}))


def preprocessing(base: Model) -> list:
    """The pixel preprocessing layer the backbone's family expects, if it does not rescale itself."""
    mode = getattr(base, "preprocessing_mode", None)
    if mode is None:  # MobileNetV3, EfficientNet(V2), ConvNeXt: Rescaling/Normalization inside the model
        return []
    if mode != "tf":
        raise _common.UsageError(f"backbone {type(base).__name__}: its preprocess_input mode {mode!r} is not one "
                                 "rescaling; this experiment supports mode 'tf' and models that rescale themselves")
    return [("preprocessing", Rescaling(1 / 127.5, offset=-1.0))]


def head(channels: int, rngs: nnx.Rngs, activation: str | None = "relu") -> list:
    """The classifier on a (N, h, w, channels) feature map.

    Listing 8.26's feature-extraction head has ``Dense(256, activation="relu")``; the book's
    end-to-end model (frozen backbone, then fine-tuned) has ``Dense(256)`` with no activation.
    """
    return [GlobalAveragePooling2D(), Dense(channels, 256, activation=activation, rngs=rngs),
            Dropout(0.25, rngs=rngs), Dense(256, 1, activation="sigmoid", rngs=rngs)]


def classifier(args: argparse.Namespace) -> Sequential:
    """Listing 8.28: augmentation → preprocessing (x / 127.5 − 1) → frozen backbone → head
    (``--weights none``: the backbone is not frozen)."""
    rngs = model_rngs(args.seed)
    base = backbone(args)
    before = len(base.trainable_weights)
    if from_scratch(args):
        _common.say(f"backbone not frozen (--weights none, from scratch): {before} trainable weights")
    else:
        base.trainable = False
        # Listing 8.29's check (the book's Xception: 154 → 0; MobileNet: 81 → 0).
        _common.say(f"trainable weights of the backbone before freezing: {before}, "
                    f"after: {len(base.trainable_weights)}")
    channels = list(base.layer_shapes((1, args.image_size, args.image_size, 3)).values())[-1][-1]
    return Sequential([("data_augmentation", data_augmentation(rngs)), *preprocessing(base), ("backbone", base),
                       *head(channels, rngs, activation=None)])


def extract_features(args: argparse.Namespace, splits: dict) -> dict:
    """Listing 8.25: every split through preprocessing + backbone, once."""
    base = backbone(args)
    extractor = Sequential([*preprocessing(base), ("backbone", base)])
    return {split: (predict(extractor, images, batch_size=64), labels) for split, (images, labels) in splits.items()}


def main(argv: list[str] | None = None) -> dict:
    p = add_flags(_common.parser(__doc__, "ch08_pretrained"))
    p.add_argument("--variant", choices=VARIANTS, default="features")
    p.add_argument("--backbone", choices=("mobilenet", "xception", *modern_backbones()), default="mobilenet")
    p.add_argument("--alpha", type=float, default=0.75, help="MobileNet width multiplier")
    p.add_argument("--weights", default=None,
                   help="backbone weights file (default for MobileNet: imagenet); none: from scratch")
    p.add_argument("--from", dest="from_checkpoint", type=Path, default=None,
                   help="finetune: the augmented run's checkpoint (default runs/ch08_pretrained_augmented/checkpoint)")
    args = p.parse_args(argv)
    args = _common.apply_profile(args, PROFILES[args.variant])
    if from_scratch(args) and args.variant != "augmented":
        raise _common.UsageError("--weights none trains the backbone from scratch with the head: --variant augmented "
                                 "only (there is nothing pretrained to extract features with or to fine-tune)")
    name = f"ch08_pretrained_{args.variant}"
    if args.out == Path("runs") / "ch08_pretrained":
        args.out = Path("runs") / name
    model_name = f"{args.backbone}_{args.alpha}" if args.backbone == "mobilenet" else args.backbone
    if (done := _common.finished(args)) is not None:
        return done
    splits = load_splits(args)
    extra = {"variant": args.variant, "backbone": model_name,
             "backbone_weights": "none (from scratch)" if from_scratch(args) else args.weights or "imagenet"}
    if args.variant == "features":
        with _common.Timer() as timer:
            splits = extract_features(args, splits)
        _common.say(f"features {splits['train'][0].shape[1:]} of {sum(len(x) for x, _ in splits.values())} images "
                    f"in {timer.seconds:.1f}s")
        model = Sequential(head(splits["train"][0].shape[-1], model_rngs(args.seed)))
        extra["extract_seconds"] = timer.seconds
        optimizer = Adam(1e-3)
    else:
        model = classifier(args)
        optimizer = Adam(1e-3 if args.variant == "augmented" else 1e-5)
    if args.variant == "finetune":
        source = args.from_checkpoint or Path("runs") / "ch08_pretrained_augmented" / "checkpoint"
        if not source.is_dir():
            raise FileNotFoundError(f"finetune starts from the augmented run's checkpoint, not found at {source}; "
                             "run --variant augmented first or pass --from DIR")
        restore(source, model)
        unfreeze_except_batchnorm(model.backbone)
        extra["from_checkpoint"] = str(source)
    extra["trainable_params"], extra["non_trainable_params"] = count_params(model)
    return fit_and_test(args, name, model, splits, model_name=model_name, optimizer=optimizer, **extra)


if __name__ == "__main__":
    _common.run(main)
