"""DLwP ch. 9, the residual convnet after listings 9.1–9.3 (the book's ``residual_block``,
297,697 parameters). Prints its summary, then trains it briefly on Dogs vs Cats at 32×32 as the book's shape suggests.

Run:
    python experiments/ch09_residual_blocks.py [--profile book|quick] [--epochs N] [--image-size 32]
        [--batch-size N] [--data-dir DIR] [--test-dir DIR] [--out runs/ch09_residual_blocks] [--seed 0]
"""


import _common
from ch08_dogs_vs_cats import add_flags, train_and_test
from jaxvision.models import build_model
from jaxvision.models.summary import summary

NAME = "ch09_residual_blocks"
PROFILES = {"book": {"epochs": 10, "image_size": 32, "batch_size": 64},
            "quick": {"epochs": 5, "image_size": 32, "batch_size": 32}}


def main(argv: list[str] | None = None) -> dict:
    args = _common.apply_profile(add_flags(_common.parser(__doc__, NAME)).parse_args(argv), PROFILES)
    summary(build_model("residual_convnet", seed=args.seed), (1, args.image_size, args.image_size, 3))
    return train_and_test(args, NAME, "residual_convnet")


if __name__ == "__main__":
    _common.run(main)
