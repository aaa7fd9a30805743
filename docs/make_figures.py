"""Copy the figures the quick-profile experiments wrote (``runs/``) into ``docs/figures/`` for the
chapter pages, and draw the one no experiment writes (nine augmentations of one training image,
listing 8.14's ``data_augmentation``). Never edit the figures by hand; run:

    python experiments/run_all.py --profile quick       # or the single commands below
    python docs/make_figures.py

A missing source is listed with the command that writes it, and the script exits with status 1.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RUNS, OUT = ROOT / "runs", ROOT / "docs" / "figures"

# docs/figures/<name> ← runs/<path>, and the command that writes it
FIGURES = {
    "ch08_mnist_accuracy.png": ("ch08_mnist_convnet_quick/curves_accuracy.png",
                                "experiments/ch08_mnist_convnet.py --profile quick --out runs/ch08_mnist_convnet_quick"),
    "ch08_scratch_accuracy.png": ("ch08_dogs_vs_cats_scratch/curves_accuracy.png",
                                  "experiments/ch08_dogs_vs_cats.py --variant scratch --profile quick"),
    "ch08_scratch_loss.png": ("ch08_dogs_vs_cats_scratch/curves_loss.png",
                              "experiments/ch08_dogs_vs_cats.py --variant scratch --profile quick"),
    "ch08_augmented_accuracy.png": ("ch08_dogs_vs_cats_augmented/curves_accuracy.png",
                                    "experiments/ch08_dogs_vs_cats.py --variant augmented --profile quick"),
    "ch09_mini_xception_accuracy.png": ("ch09_mini_xception/curves_accuracy.png",
                                        "experiments/ch09_mini_xception.py --profile quick"),
    "ch10_input.png": ("ch10_activations/input.png", "experiments/ch10_activations.py"),
    "ch10_activations_conv2d.png": ("ch10_activations/activations/conv2d.png", "experiments/ch10_activations.py"),
    "ch10_filters_conv_pw_1.png": ("ch10_filters/filters_conv_pw_1.png", "experiments/ch10_filters.py"),
    "ch10_filters_conv_pw_6.png": ("ch10_filters/filters_conv_pw_6.png", "experiments/ch10_filters.py"),
    "ch10_elephant_gradcam.png": ("ch10_gradcam/elephant_gradcam.png", "experiments/ch10_gradcam.py"),
    "ch11_segmentation_predictions.png": ("ch11_segmentation/predictions.png",
                                          "experiments/ch11_segmentation.py --profile quick"),
    "ch11_segmentation_iou.png": ("ch11_segmentation/curves_foreground_iou.png",
                                  "experiments/ch11_segmentation.py --profile quick"),
    "ch11_sam_prompt_mask.png": ("ch11_sam/prompt_mask.png",
                                 "experiments/ch11_sam.py --checkpoint tests/models/segment_anything/sam_tiny.pth"),
    "ch11_sam_candidates.png": ("ch11_sam/candidates.png",
                                "experiments/ch11_sam.py --checkpoint tests/models/segment_anything/sam_tiny.pth"),
}


def augmentation_grid(out: Path) -> None:
    """Figure 8.10: nine augmentations of the first training cat, 180 px, the book's layers."""
    from flax import nnx

    from jaxvision.data import data_root
    from jaxvision.data.image_io import load_rgb, resize
    from jaxvision.models.augmentation import data_augmentation

    image = resize(load_rgb(sorted((data_root() / "dogs_vs_cats_small" / "train" / "cat").iterdir())[0]), (180, 180))
    augment = data_augmentation(nnx.Rngs(augment=0))
    augment.train()
    tiles = [np.clip(np.asarray(augment(image[None]))[0], 0, 255).astype(np.uint8) for _ in range(9)]
    rows = [np.concatenate(tiles[i:i + 3], axis=1) for i in (0, 3, 6)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    missing = []
    for name, (source, command) in FIGURES.items():
        if (RUNS / source).is_file():
            shutil.copyfile(RUNS / source, OUT / name)
        else:
            missing.append(f"runs/{source}: python {command}")
    augmentation_grid(OUT / "ch08_augmentation.png")
    if missing:
        print("missing (run these first):\n  " + "\n  ".join(sorted(set(missing))), file=sys.stderr)
        return 1
    print(f"wrote {len(FIGURES) + 1} figures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
