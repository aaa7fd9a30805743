"""DLwP listings 10.7–10.16: the patterns the filters of a trained convnet respond to, by
gradient ascent in input space (all filters of a layer vmapped in one jitted call).

Run:
    python experiments/ch10_filters.py [--checkpoint runs/ch09_mini_xception/checkpoint]
        [--layer NAME ...] [--num-filters N] [--steps 30] [--step-size 10] [--image-size N]
        [--crop 25] [--chunk-size 16] [--out runs/ch10_filters]
        [--backbone xception --weights xception_weights_tf_dim_ordering_tf_kernels_notop.h5]

Without ``--checkpoint``: the pretrained ImageNet MobileNet α 0.75 (Keras's weights, offline),
whose filters the book's ImageNet Xception stands for; four pointwise convs from shallow to
deep (``conv_pw_1``, ``conv_pw_3``, ``conv_pw_6``, ``conv_pw_11``), at 200 px (the book's
size). ``--backbone xception --weights PATH`` runs the book's own model: the layers of its
figure 10.6 (``block2_sepconv1``, ``block4_sepconv1``, ``block8_sepconv1``) and
``block3_sepconv1``, whose filter 2 is figure 10.5. As in the book's ImageNet run, the
[0.4, 0.6] noise image is fed to the model as is (it takes inputs in [-1, 1]).

With ``--checkpoint`` (a model the ch. 8/9 scripts trained): three conv layers spread over the
model's depth (first, middle, last; residual projections skipped), fed to the model × 255
(those models take [0, 255] pixels), at the checkpoint's training image size or 128 px,
whichever is larger (``--image-size 200`` is the book's).

Every layer: the first 64 filters, drawn 8 × 8 as the book's listing 10.16 does.

Both: 30 steps of length 10 per pixel (the book's ``ops.normalize``) from a [0.4, 0.6] noise
image (the book's units); ``--normalize tensor`` normalises the whole gradient instead. Writes
``filters_<layer>.png`` (a square grid, 5-pixel margins, 25-pixel crop), ``figure_10_5.png``
(one filter's pattern: filter 2 of ``block3_sepconv1`` for the Xception, else of the middle
layer, as the book shows filter 2 of ``block3_sepconv1``) and ``metrics.json``
with each layer's mean filter activation before and after the ascent and its seconds
(compilation included; ``bench/bench_filters.py`` measures throughput).
"""

import math

import numpy as np
from PIL import Image

import _ch10
import _common
from jaxvision.interpret import activations, conv_and_pool_layers, deprocess_image, stitch_filters, visualize_filters
from jaxvision.interpret.filters import NORMALIZE_MODES


FILTER_IMAGE_SIZE = 128
PRETRAINED_LAYERS = {"mobilenet": ("conv_pw_1", "conv_pw_3", "conv_pw_6", "conv_pw_11"),
                     "xception": ("block2_sepconv1", "block3_sepconv1", "block4_sepconv1", "block8_sepconv1")}
FIGURE_10_5_LAYER = "block3_sepconv1"
BOOK_PATTERN_SIZE = 200  # the book's img_width, for the pretrained models
NUM_FILTERS = 64  # the book's grid: range(64), 8 × 8


def default_layers(model, size: int) -> list[str]:
    convs = [name for name in conv_and_pool_layers(model, (1, size, size, 3))
             if "Conv" in type(getattr(model, name, None)).__name__ and "residual" not in name]
    return list(dict.fromkeys(convs[round(i)] for i in np.linspace(0, len(convs) - 1, 3)))


def mean_filter_activation(model, layer: str, images: np.ndarray, filters: np.ndarray) -> float:
    """Average over filters of the ascent's objective: filter i's mean activation on image i
    (``images`` as the model saw them)."""
    act = activations(model, images, [layer])[layer]
    return float(np.mean([act[i, 2:-2, 2:-2, f].mean() for i, f in enumerate(filters)]))


def main(argv: list[str] | None = None) -> dict:
    p = _ch10.parser(__doc__, "ch10_filters", None)
    p.add_argument("--num-filters", type=int, default=NUM_FILTERS, help="filters per layer (the book's 64)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--step-size", type=float, default=10.0)
    p.add_argument("--crop", type=int, default=25)
    p.add_argument("--chunk-size", type=int, default=16, help="filters per vmapped call (memory bound)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalize", choices=NORMALIZE_MODES, default="pixel",
                   help="gradient normalisation: per pixel as the book's ops.normalize, or of the whole tensor")
    args = p.parse_args(argv)
    _ch10.check_backbone(args)
    if args.checkpoint is None:
        model, input_scale = _ch10.pretrained(args, include_top=False), 1.0
        size = args.image_size or BOOK_PATTERN_SIZE
        layers = args.layer or list(PRETRAINED_LAYERS[args.backbone or "mobilenet"])
    else:
        model, input_scale = _ch10.load_model(args.checkpoint), 255.0
        # Convnets take any size: visualise at the book's 200 px, or the source photos' 128 px
        # when the model trained smaller (deep layers shrink to nothing at a 64-px training size).
        size = args.image_size or max(_ch10.image_size(args), FILTER_IMAGE_SIZE)
        layers = args.layer or default_layers(model, size)
    num_filters = args.num_filters
    results = {}
    figure_layer = FIGURE_10_5_LAYER if FIGURE_10_5_LAYER in layers else layers[len(layers) // 2]
    for layer in layers:
        channels = model.layer_shapes((1, size, size, 3))[layer][-1]
        filters = np.arange(min(num_filters, channels))
        options = dict(image_size=size, step_size=args.step_size, seed=args.seed, input_scale=input_scale,
                       normalize=args.normalize)
        with _common.Timer() as timer:
            images = visualize_filters(model, layer, filters, steps=args.steps, chunk_size=args.chunk_size, **options)
        starts = visualize_filters(model, layer, filters, steps=0, **options)
        n = math.ceil(math.sqrt(len(filters)))
        path = stitch_filters([deprocess_image(im, args.crop) for im in images], args.out / f"filters_{layer}.png", n=n)
        if layer == figure_layer:
            figure_filter = min(2, len(filters) - 1)
            Image.fromarray(deprocess_image(images[figure_filter], args.crop)).save(args.out / "figure_10_5.png")
        results[layer] = {"filters": len(filters), "grid": n, "png": str(path), "seconds": timer.seconds,
                          "mean_activation_start": mean_filter_activation(model, layer, starts, filters),
                          "mean_activation_end": mean_filter_activation(model, layer, images, filters)}
        r = results[layer]
        print(f"{layer}: {r['filters']} filters in {r['seconds']:.1f}s, mean activation "
              f"{r['mean_activation_start']:.4g} → {r['mean_activation_end']:.4g}", flush=True)
    model_name = str(args.checkpoint) if args.checkpoint else _ch10.pretrained_name(args)
    metrics = {"experiment": "ch10_filters", "checkpoint": args.checkpoint and str(args.checkpoint), "model": model_name,
               "image_size": size,
               "steps": args.steps, "step_size": args.step_size, "normalize": args.normalize, "layers": results,
               "figure_10_5": {"layer": figure_layer, "filter": figure_filter, "png": str(args.out / "figure_10_5.png")},
               "seconds": sum(r["seconds"] for r in results.values())}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
