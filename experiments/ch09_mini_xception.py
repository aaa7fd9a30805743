"""DLwP ch. 9: the mini-Xception (residual connections, batch normalization, separable
convolutions; 721,857 parameters) on Dogs vs Cats with augmentation (book: 90.8%).

Run:
    python experiments/ch09_mini_xception.py [--profile book|quick] [--epochs N] [--image-size N]
        [--batch-size N] [--data-dir DIR] [--test-dir DIR] [--out runs/ch09_mini_xception] [--seed 0]
        [--augmentation pipeline|model]

As the book does, the augmentation is mapped over the training batches and prefetched
(``--augmentation model``: the model's first layer instead; the same batches for the same seed).

``quick`` (≤ 20 minutes on a 2-core CPU): 64×64 images, batch 32, 30 epochs (at 80×80 the
14 epochs that fit in 20 minutes left it underfit: 0.648 test accuracy).
"""


import _common
from ch08_dogs_vs_cats import add_augmentation_flag, add_flags, train_and_test

NAME = "ch09_mini_xception"
PROFILES = {"book": {"epochs": 100, "image_size": 180, "batch_size": 64},
            "quick": {"epochs": 30, "image_size": 64, "batch_size": 32}}


def main(argv: list[str] | None = None) -> dict:
    p = add_augmentation_flag(add_flags(_common.parser(__doc__, NAME)))
    args = _common.apply_profile(p.parse_args(argv), PROFILES)
    return train_and_test(args, NAME, "mini_xception", augmented=True)


if __name__ == "__main__":
    _common.run(main)
