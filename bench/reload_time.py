"""How long ``load_model`` takes in a fresh process, for a small model of one's own and for
MobileNet α 0.75 (ImageNet head).

    python bench/reload_time.py --write /tmp/reload        # once: the two checkpoints
    python bench/reload_time.py --load /tmp/reload/sepnet  # one reload; prints its seconds
    python bench/reload_time.py --load /tmp/reload/mobilenet

Time whole processes (``/usr/bin/time``, or any harness that runs the command several times):
a reload is what a new process pays before its first prediction, imports included. The
printed seconds are ``load_model`` alone.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the own model's module, sepnet.py


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", type=Path, help="write the two checkpoints into this folder")
    p.add_argument("--load", type=Path, help="reload this checkpoint")
    args = p.parse_args(argv)
    from flax import nnx

    from jaxvision.layers import count_params
    from jaxvision.models import build_model
    from jaxvision.train import load_model, save_checkpoint

    if args.write:
        from sepnet import SepNet

        for name, model in (("sepnet", SepNet(rngs=nnx.Rngs(0))), ("mobilenet", build_model("mobilenet", alpha=0.75))):
            save_checkpoint(args.write / name, model)
            print(f"{args.write / name}: {sum(count_params(model)):,} weights")
    if args.load:
        start = time.perf_counter()
        model = load_model(args.load, trusted_modules=("sepnet",))
        print(f"load_model {args.load}: {time.perf_counter() - start:.2f} s, {sum(count_params(model)):,} weights")


if __name__ == "__main__":
    main()
