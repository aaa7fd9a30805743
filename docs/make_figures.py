"""Copy the figures the experiments wrote (``runs/``) into ``docs/figures/`` for the chapter
pages. Every figure is written by an experiment; never edit them by hand. Run:

    python experiments/run_all.py --profile quick       # or the single commands below
    python docs/make_figures.py

A missing source is listed with the command that writes it, and the script exits with status 1.
"""

import shutil
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
RUNS, OUT = ROOT / "runs", ROOT / "docs" / "figures"

# docs/figures/<name> ← runs/<path>, and the command that writes it
SAM_FIGURES = "experiments/ch11_sam.py --checkpoint tests/models/segment_anything/sam_tiny.pth --book-figures --out runs/ch11_sam_figures"
FIGURES = {
    "figure_8_8.png": ("ch08_dogs_vs_cats_scratch/figure_8_8.png",
                       "experiments/ch08_dogs_vs_cats.py --variant scratch --figures-only"),
    "figure_8_10.png": ("ch08_dogs_vs_cats_augmented/figure_8_10.png",
                        "experiments/ch08_dogs_vs_cats.py --variant augmented --figures-only"),
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
    "ch10_input.png": ("ch10_activations/input.png", "experiments/run_all.py --profile quick --only ch10_activations"),
    "figure_10_2.png": ("ch10_activations/figure_10_2.png", "experiments/run_all.py --profile quick --only ch10_activations"),
    "ch10_activations_conv2d.png": ("ch10_activations/activations/conv2d.png",
                                    "experiments/run_all.py --profile quick --only ch10_activations"),
    "figure_10_5.png": ("ch10_filters/figure_10_5.png", "experiments/run_all.py --profile quick --only ch10_filters"),
    "ch10_filters_block3_sepconv1.png": ("ch10_filters/filters_block3_sepconv1.png",
                                         "experiments/run_all.py --profile quick --only ch10_filters"),
    "ch10_filters_conv_pw_1.png": ("ch10_filters_imagenet/filters_conv_pw_1.png",
                                   "experiments/run_all.py --profile quick --only ch10_filters_imagenet"),
    "ch10_elephant_gradcam.png": ("ch10_gradcam_imagenet/elephant_gradcam.png",
                                  "experiments/run_all.py --profile quick --only ch10_gradcam_imagenet"),
    "ch10_attribution_grid.png": ("ch10_attribution/grid.png", "experiments/ch10_attribution.py --profile quick"),
    "figure_11_3.png": ("ch11_segmentation/figure_11_3.png", "experiments/ch11_segmentation.py --figures-only"),
    "figure_11_4.png": ("ch11_segmentation/figure_11_4.png", "experiments/ch11_segmentation.py --figures-only"),
    "ch11_segmentation_predictions.png": ("ch11_segmentation/predictions.png",
                                          "experiments/ch11_segmentation.py --profile quick"),
    "ch11_segmentation_iou.png": ("ch11_segmentation/curves_foreground_iou.png",
                                  "experiments/ch11_segmentation.py --profile quick"),
    "ch11_segmentation_unet_predictions.png": ("ch11_segmentation_unet/predictions.png",
                                               "experiments/ch11_segmentation.py --profile quick --variant unet"),
    "ch11_segmentation_unet_gradcam.png": ("ch11_segmentation_unet/grad_cam.png",
                                           "experiments/ch11_segmentation.py --profile quick --variant unet"),
    **{f"figure_11_{n}.png": (f"ch11_sam_figures/figure_11_{n}.png", SAM_FIGURES) for n in range(9, 16)},
}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    missing = []
    for name, (source, command) in FIGURES.items():
        if (RUNS / source).is_file():
            shutil.copyfile(RUNS / source, OUT / name)
        else:
            missing.append(f"runs/{source}: python {command}")
    if missing:
        print("missing (run these first):\n  " + "\n  ".join(sorted(set(missing))), file=sys.stderr)
        return 1
    print(f"wrote {len(FIGURES)} figures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
