"""Filter visualisation throughput: all filters of one layer in one jitted ``jax.vmap`` call
(``visualize_filters``) versus the book's loop, one filter and one jitted step at a time
(``visualize_filter_loop``). Same machine, same run, same start images.

    .venv/bin/python bench/bench_filters.py                      # about 1 min on 2 CPU cores
    .venv/bin/python bench/bench_filters.py --image-size 180 --out runs/bench_filters.json

The model is the ch. 8 Dogs vs Cats convnet (random weights: speed does not depend on
them), layer ``conv2d_1`` (64 filters); the forward stops at that layer in both methods.
Times exclude compilation (each method is compiled by a warm-up call first, timed apart).
Prints a markdown row and writes the numbers as JSON to ``--out``.

On a CPU, expect no speed-up: each step is compute-bound and already uses every core, so
batching removes only the per-step dispatch (tens of microseconds against milliseconds), and
a batch of 64 feature maps falls out of cache. The vmapped path pays off on accelerators,
where one 64×64 image leaves the device mostly idle.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxvision.environment import device_description
from jaxvision.interpret import visualize_filter_loop, visualize_filters
from jaxvision.models import build_model


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="dogs_vs_cats_convnet")
    p.add_argument("--layer", default="conv2d_1")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--chunk-size", type=int, default=None, help="filters per vmapped call (default: all in one)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    model = build_model(args.model)
    filters = list(range(args.filters))
    options = dict(image_size=args.image_size, steps=args.steps)

    vmap_options = {**options, "chunk_size": args.chunk_size}
    _, vmap_compile = timed(lambda: visualize_filters(model, args.layer, filters, **vmap_options))
    vmapped, vmap_seconds = timed(lambda: visualize_filters(model, args.layer, filters, **vmap_options))
    _, loop_compile = timed(lambda: visualize_filter_loop(model, args.layer, filters[:1], **{**options, "steps": 1}))
    looped, loop_seconds = timed(lambda: visualize_filter_loop(model, args.layer, filters, **options))

    result = {"device": device_description(), "model": args.model, "layer": args.layer, "filters": args.filters,
              "image_size": args.image_size, "steps": args.steps, "chunk_size": args.chunk_size,
              "loop_seconds": loop_seconds, "vmap_seconds": vmap_seconds,
              "loop_images_per_second": args.filters / loop_seconds,
              "vmap_images_per_second": args.filters / vmap_seconds,
              "speedup": loop_seconds / vmap_seconds,
              "vmap_first_call_seconds": vmap_compile, "loop_warmup_seconds": loop_compile,
              "max_relative_difference": float(np.abs(vmapped - looped).max() / np.abs(looped).max())}
    print("| benchmark | device | loop (img/s) | vmapped (img/s) | speedup |")
    print("|---|---|---|---|---|")
    chunks = f", vmapped in chunks of {args.chunk_size}" if args.chunk_size else ""
    print(f"| filter visualisation: {args.filters} filters of {args.model}/{args.layer}, "
          f"{args.image_size}×{args.image_size}, {args.steps} steps{chunks} | {result['device']} | "
          f"{result['loop_images_per_second']:.2f} | {result['vmap_images_per_second']:.2f} | "
          f"{result['speedup']:.1f}× |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
