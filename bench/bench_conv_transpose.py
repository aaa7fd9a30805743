"""Time the two stride-2 Conv2DTranspose formulations, forward and forward+backward, jitted.

    .venv/bin/python bench/bench_conv_transpose.py              # the segmenter's shapes at 64 px, batch 16
    .venv/bin/python bench/bench_conv_transpose.py --size 200 --batch 8 --repeats 3

``dilated`` is the input-dilated convolution (``lax.conv_general_dilated(lhs_dilation=s)``,
Keras's formulation); ``phases`` is the sub-pixel form, four stride-1 convolutions interleaved.
Times are the best of ``--repeats`` runs after one compile-and-warm-up call, in milliseconds.
"""

import argparse

import jax

from timing import best_time
from jaxvision.layers.conv_transpose import conv_transpose_dilated, conv_transpose_phases, transpose_padding

FORMULATIONS = {"dilated": conv_transpose_dilated, "phases": conv_transpose_phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="the segmenter's input size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per case (best is kept)")
    args = parser.parse_args()
    print(f"backend={jax.default_backend()} batch={args.batch} (ms, best of {args.repeats})")
    print(f"{'input (N, H, W, C) -> filters':>32} {'formulation':>11} {'fwd':>9} {'fwd+bwd':>9}")
    pads = (transpose_padding(3, 2, 1, "same", None),) * 2
    keys = jax.random.split(jax.random.key(0), 3)
    # The decoder's three Conv2DTranspose(filters, 3, strides=2, padding="same"), at 1/8, 1/4, 1/2 size.
    for size, channels in ((args.size // 8, 256), (args.size // 4, 128), (args.size // 2, 64)):
        x = jax.random.normal(keys[0], (args.batch, size, size, channels))
        kernel = jax.random.normal(keys[1], (3, 3, channels, channels))
        cotangent = jax.random.normal(keys[2], (args.batch, 2 * size, 2 * size, channels))
        for label, conv in FORMULATIONS.items():
            def forward(x, kernel, conv=conv):
                return conv(x, kernel, (2, 2), pads)

            def forward_backward(x, kernel, forward=forward):
                y, vjp = jax.vjp(forward, x, kernel)
                return y, vjp(cotangent)

            fwd = best_time(jax.jit(forward), x, kernel, repeats=args.repeats)
            both = best_time(jax.jit(forward_backward), x, kernel, repeats=args.repeats)
            shape = f"({args.batch}, {size}, {size}, {channels}) -> {channels}"
            print(f"{shape:>32} {label:>11} {fwd:9.1f} {both:9.1f}", flush=True)


if __name__ == "__main__":
    main()
