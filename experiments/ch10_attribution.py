"""Beyond listing 10.25: every CAM and input attribution of jaxvision.interpret on the
pretrained ImageNet MobileNet, scored by deletion/insertion AUC and ROAD (issue 31).

Run:
    python experiments/ch10_attribution.py [--profile book|quick] [--image FILE ...] [--method NAME ...] [--image-size 224]
        [--steps 16] [--ig-steps 50] [--samples 50] [--road-percentiles P ...] [--no-sanity]
        [--out runs/ch10_attribution]

``--profile book`` (the default) takes the settings below; ``--profile quick`` (meant for a
shared 2-core CPU; ``run_all.py --profile quick``) takes 8 deletion/insertion steps, 16 path
points, 16 noisy copies, the one ROAD percentile 50 and no randomisation check. Flags given
override the profile.

The MobileNet α 0.75 with its ImageNet top (softmax, as ``ch10_gradcam.py``) explains each
image's top class on $JAXVISION_DATA/images/elephant.jpg and cheetah.jpg (224 px, Pillow
bilinear, ``preprocess_input``). CAMs at ``conv_pw_13_relu`` (7 × 7 × 768); input attributions
at the pixels: gradients, gradient × input, integrated gradients (``--ig-steps``
Gauss–Legendre points from a zero baseline, i.e. mid-grey), SmoothGrad (``--samples`` noisy
copies, σ 15% of the range), guided backprop, occlusion (32 × 32 windows, stride 16: a seventh
of the image size and half that). Each
pixel map is reduced over channels (absolute values for the gradients, SmoothGrad and guided
backprop; signed sums for gradient × input, integrated gradients and occlusion) and min-max
scaled to [0, 1]; then deletion (to 0, mid-grey) and insertion (into a blurred copy) with
``--steps`` steps, RISE's area under the probability curve, and ROAD (pytorch-grad-cam's
``ROADCombined``, by default at percentiles 10, 30, 50, 70, 90, noise 0.01). Writes ``grid.png`` (method ×
image, each map over the photo), ``metrics.json`` (per method and image: AUCs, ROAD, seconds;
integrated gradients' completeness error), and, unless ``--no-sanity``, the cascading
model-randomisation check of Grad-CAM of the top class's *logit* (the same weights built with
``classifier_activation=None``: a re-drawn top layer saturates the softmax) — Spearman ρ after
each re-initialised layer, top first; nan where a map is all zero.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import _ch10  # noqa: E402
import _common  # noqa: E402
from jaxvision import interpret  # noqa: E402
from jaxvision.interpret.faithfulness import saliency_at_input  # noqa: E402

LAYER = "conv_pw_13_relu"
CAMS = ["grad_cam", "grad_cam_plus_plus", "xgrad_cam", "hires_cam", "layer_cam", "eigen_cam", "score_cam",
        "ablation_cam"]
METHODS = (*CAMS, "gradients", "gradient_times_input", "integrated_gradients", "smooth_grad", "guided_backprop",
           "occlusion")
ABSOLUTE = {"gradients", "smooth_grad", "guided_backprop"}  # signless: reduced by |a|
PERCENTILES = (10, 30, 50, 70, 90)
PROFILES = {"book": {"steps": 16, "ig_steps": 50, "samples": 50, "road_percentiles": list(PERCENTILES),
                     "sanity": True},
            "quick": {"steps": 8, "ig_steps": 16, "samples": 16, "road_percentiles": [50.0], "sanity": False}}


def pixel_map(name: str, attribution: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N, H, W) in [0, 1]; (N, h, w) CAMs pass through the same scaling."""
    maps = (np.abs(attribution) if name in ABSOLUTE else attribution).sum(-1) if attribution.ndim == 4 else attribution
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return (maps - low) / np.where(span > 0, span, 1)


def explain(model, images: np.ndarray, args: argparse.Namespace) -> tuple[dict, dict]:
    window = max(1, args.image_size // 7)  # 32 px at 224
    stride = max(1, window // 2)
    methods = {name: (lambda m, x, name=name: getattr(interpret, name)(m, x, LAYER)) for name in CAMS}
    methods.update({
        "gradients": interpret.gradients, "gradient_times_input": interpret.gradient_times_input,
        "integrated_gradients": lambda m, x: interpret.integrated_gradients(m, x, steps=args.ig_steps),
        "smooth_grad": lambda m, x: interpret.smooth_grad(m, x, samples=args.samples),
        "guided_backprop": interpret.guided_backprop,
        "occlusion": lambda m, x: interpret.occlusion(m, x, window=(window, window), stride=(stride, stride)),
    })
    maps, seconds = {}, {}
    for name, method in methods.items():
        if args.method and name not in args.method:
            continue
        with _common.Timer() as timer:
            maps[name] = np.asarray(method(model, images))
        seconds[name] = timer.seconds
        _common.say(f"{name}: {timer.seconds:.1f} s (compilation included)")
    return maps, seconds


def draw_grid(photos: np.ndarray, maps: dict, titles: list[str], path) -> None:
    fig, axes = plt.subplots(len(maps), len(photos), figsize=(2.2 * len(photos), 2.2 * len(maps)), squeeze=False)
    for row, (name, scaled) in enumerate(maps.items()):
        for col, photo in enumerate(photos):
            ax = axes[row, col]
            ax.imshow(interpret.overlay_heatmap(photo, scaled[col]))
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name.replace("_", " "), fontsize=9)
            if row == 0:
                ax.set_title(titles[col], fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    from jaxvision.applications import decode_predictions, preprocess_input
    from jaxvision.train import predict

    p = _common.base_parser(__doc__, "ch10_attribution")
    p.add_argument("--image", action="append", default=None, help="image file; repeat for several")
    p.add_argument("--method", action="append", choices=METHODS, default=None,
                   help="run only this method; repeat for several (default: all)")
    p.add_argument("--image-size", type=int, default=_ch10.PRETRAINED_IMAGE_SIZE["mobilenet"])
    p.add_argument("--profile", choices=tuple(PROFILES), default="book")
    p.add_argument("--steps", type=int, default=None, help="deletion/insertion steps")
    p.add_argument("--ig-steps", type=int, default=None, help="integrated-gradients path points")
    p.add_argument("--samples", type=int, default=None, help="SmoothGrad noisy copies")
    p.add_argument("--road-percentiles", type=float, nargs="+", default=None,
                   help="ROAD removal percentiles (each is one imputation solve per image and order)")
    p.add_argument("--no-sanity", dest="sanity", action="store_false", default=None,
                   help="skip the model-randomisation check")
    args = p.parse_args(argv)
    for key, value in PROFILES[args.profile].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    root = _common.data_root() / "images"
    paths = [Path(f) for f in args.image] if args.image else [root / "elephant.jpg", root / "cheetah.jpg"]
    model = _ch10.pretrained_mobilenet()
    photos = np.stack([_ch10.load_photo(path, args.image_size) for path in paths])
    images = preprocess_input(photos)
    outputs = predict(model, images)
    top = decode_predictions(outputs, top=1)
    classes = outputs.argmax(-1)
    titles = [f"{path.stem}: {t[0][1]} {t[0][2]:.2f}" for path, t in zip(paths, top)]
    _common.say("; ".join(titles))

    raw, seconds = explain(model, images, args)
    completeness = (interpret.completeness_error(model, images, raw["integrated_gradients"], 0.0, classes)
                     if "integrated_gradients" in raw else np.array([]))
    scaled = {name: pixel_map(name, value) for name, value in raw.items()}
    draw_grid(photos, scaled, titles, args.out / "grid.png")

    scores = {}
    with _common.Timer() as scoring:
        for name, maps in scaled.items():
            # CAMs at the input's size as the scores would resize them: one compilation for all maps
            maps = saliency_at_input(maps, len(images), images.shape[1:3])
            curves = interpret.deletion_insertion(model, images, maps, classes, steps=args.steps)
            road = interpret.road(model, images, maps, classes, percentiles=args.road_percentiles)
            scores[name] = {"deletion_auc": curves["deletion_auc"].tolist(),
                            "insertion_auc": curves["insertion_auc"].tolist(),
                            "road_combined": road["combined"].tolist(), "road_morf": road["morf"].tolist(),
                            "road_lerf": road["lerf"].tolist(), "seconds": seconds[name]}
            _common.say(f"{name}: deletion AUC {curves['deletion_auc'].round(3)}, insertion AUC "
                        f"{curves['insertion_auc'].round(3)}, ROAD {road['combined'].round(3)}")
    sanity = {}
    if args.sanity:
        with _common.Timer() as timer:
            logits = _ch10.pretrained_mobilenet(classifier_activation=None)  # a random top saturates the softmax
            sanity = interpret.randomization_sanity_check(
                logits, images, lambda m, x: interpret.grad_cam(m, x, LAYER, classes))
        _common.say(f"sanity (Grad-CAM, cascading from the top): {len(sanity)} layers in {timer.seconds:.0f} s; "
                    + ", ".join(f"{name} {rho.round(2)}" for name, rho in list(sanity.items())[:6]))
    metrics = {"experiment": "ch10_attribution", "profile": args.profile,
               "model": f"MobileNet(alpha={_ch10.PRETRAINED_ALPHA}, weights='imagenet')", "layer": LAYER,
               "image_size": args.image_size, "images": [str(path) for path in paths],
               "top": [[t[0][0], t[0][1], float(t[0][2])] for t in top], "classes": classes.tolist(),
               "deletion_insertion_steps": args.steps, "ig_steps": args.ig_steps, "smooth_grad_samples": args.samples,
               "road_percentiles": args.road_percentiles, "scores": scores,
               "integrated_gradients_completeness_error": completeness.tolist(),
               "sanity_grad_cam_spearman": {name: rho.tolist() for name, rho in sanity.items()},
               "scoring_seconds": scoring.seconds,
               "grid": str(args.out / "grid.png")}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
