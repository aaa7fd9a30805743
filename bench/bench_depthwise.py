"""Time the two depthwise-conv formulations, forward and forward+backward, jitted.

    .venv/bin/python bench/bench_depthwise.py            # mini-Xception shapes, batch 32 (~2 min on CPU)
    .venv/bin/python bench/bench_depthwise.py --batch 8 --repeats 5

``grouped`` is ``lax.conv_general_dilated(feature_group_count=C)`` (Keras's formulation);
``shifted`` is the sum of kernel-tap-weighted strided slices; ``layer`` is what
``jaxvision.layers.separable.depthwise_conv`` dispatches to on this backend. Times are the
best of ``--repeats`` runs after one compile-and-warm-up call, in milliseconds.
"""

import argparse

import jax

from timing import best_time
from jaxvision.layers.separable import depthwise_conv, depthwise_conv_lax, depthwise_conv_shifted

# (height, width, channels, kernel, strides, padding, depth_multiplier): the depthwise halves of
# the mini-Xception's SeparableConv2D(3, padding="same") at 180x180, plus a strided/M=2 case.
SHAPES = [
    (176, 176, 32, 3, 1, "same", 1),
    (90, 90, 128, 3, 1, "same", 1),
    (44, 44, 256, 3, 1, "same", 1),
    (11, 11, 512, 3, 1, "same", 1),
    (45, 45, 64, 3, 2, "same", 2),
]
# --shapes modern: depthwise convolutions of the issue-30 applications at 224 px, batch 16:
# MobileNetV2 / MobileNetV3 / EfficientNetB0 (3x3 and 5x5, strides 1 and 2, after Keras's
# explicit padding, hence "valid" for stride 2) and ConvNeXtTiny's 7x7 "same" (a grouped Conv2D).
MODERN_SHAPES = [
    (113, 113, 96, 3, 2, "valid", 1),   # MobileNetV2 block_1 (after block_1_pad)
    (56, 56, 144, 3, 1, "same", 1),     # MobileNetV2 block_2
    (14, 14, 576, 3, 1, "same", 1),     # MobileNetV2 block_14
    (59, 59, 144, 5, 2, "valid", 1),    # EfficientNetB0 block3a (5x5 after block3a_dwconv_pad)
    (14, 14, 672, 5, 1, "same", 1),     # EfficientNetB0 block5b / MobileNetV3Large 5x5
    (56, 56, 96, 7, 1, "same", 1),      # ConvNeXtTiny stage 0
    (7, 7, 768, 7, 1, "same", 1),       # ConvNeXtTiny stage 3
]
FORMULATIONS = {"grouped": depthwise_conv_lax, "shifted": depthwise_conv_shifted, "layer": depthwise_conv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per case (best is kept)")
    parser.add_argument("--shapes", choices=("mini_xception", "modern"), default="mini_xception")
    args = parser.parse_args()
    print(f"backend={jax.default_backend()} batch={args.batch} (ms, best of {args.repeats})")
    print(f"{'shape':>32} {'formulation':>11} {'fwd':>9} {'fwd+bwd':>9}")
    keys = jax.random.split(jax.random.key(0), 3)
    for h, w, c, k, s, padding, m in (SHAPES if args.shapes == "mini_xception" else MODERN_SHAPES):
        x = jax.random.normal(keys[0], (args.batch, h, w, c))
        kernel = jax.random.normal(keys[1], (k, k, c, m))
        times = {}
        for label, conv in FORMULATIONS.items():
            def forward(x, kernel, conv=conv):
                return conv(x, kernel, (s, s), padding)

            def forward_backward(x, kernel, cotangent, forward=forward):
                y, vjp = jax.vjp(forward, x, kernel)
                return y, vjp(cotangent)

            cotangent = jax.random.normal(keys[2], jax.eval_shape(forward, x, kernel).shape)
            times[label] = (best_time(jax.jit(forward), x, kernel, repeats=args.repeats),
                            best_time(jax.jit(forward_backward), x, kernel, cotangent, repeats=args.repeats))
            name = f"{(args.batch, h, w, c)} k{k} s{s} {padding} M{m}"
            print(f"{name:>32} {label:>11} {times[label][0]:9.1f} {times[label][1]:9.1f}", flush=True)
        fwd_x = times["grouped"][0] / times["shifted"][0]
        both_x = times["grouped"][1] / times["shifted"][1]
        print(f"{'':>32} {'speedup':>11} {fwd_x:8.1f}x {both_x:8.1f}x", flush=True)


if __name__ == "__main__":
    main()
