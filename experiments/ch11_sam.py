"""DLwP ch. 11.3: Segment Anything with point and box prompts, in pure JAX.

Loads a pretrained SAM (the vit_b / vit_l / vit_h type is read off the tensors), embeds each
image once and decodes the prompts. Three modes:

* ``--image PATH`` segments one photo with the given ``--point x,y`` (repeatable; ``--label``
  1 foreground / 0 background per point, default 1) and/or ``--box x0,y0,x1,y1``; with no
  prompt, the image centre is a foreground point.
* Without ``--image``: the horse test split (``$JAXVISION_DATA/weizmann_horse``, or
  ``--data-dir`` in the Oxford-IIIT Pet layout). Each photo gets one foreground point at its
  ground-truth mask's centroid (the nearest horse pixel when the centroid is off the horse),
  and the foreground IoU against the trimap is reported for the best-scored of the three
  candidate masks and for the single-mask output (boundary-band pixels are left out).

* ``--book-figures``: the book's figures 11.9–11.15 on ``--image`` (default
  ``$JAXVISION_DATA/images/cheetah.jpg``), made square by ``resize_and_pad`` as the book does,
  with prompts in that 1024 × 1024 padded frame (see ``BOOK_PROMPTS``), mapped to the book's
  captions: 11.9 the test image, 11.10 a prompt point, 11.11 its mask (the single-mask output,
  the book's ``get_mask(outputs, index=0)``), 11.12 a second point's mask, 11.13 the alternative
  (three candidate) masks for that second point, 11.14 a box prompt, 11.15 the box's mask.
  Each figure's title names the model that drew it.

Run:
    python experiments/ch11_sam.py --checkpoint sam_vit_b_01ec64.pth [--profile quick|book]
        [--image PATH [--point 400,300 [--label 1]] [--box 100,50,600,450]] [--book-figures]
        [--data-dir DIR] [--out runs/ch11_sam]

``quick`` scores the first 8 test horses (a few minutes for vit_b on a 2-core CPU), ``book``
all 49. Figures: ``prompt_mask.png`` (the chosen mask over the photo with the prompt drawn)
and ``candidates.png`` (the three candidate masks with their predicted IoU); ``metrics.json``
holds the predicted IoUs, the checkpoint's sha256 and the horse-set scores.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import _common
from jaxvision.data import oxford_pet_pairs
from jaxvision.data.image_io import open_image
from jaxvision.models.segment_anything import SamPredictor, load_sam, resize_and_pad
from jaxvision.models.segment_anything.checkpoint import DOWNLOAD_HINT
from jaxvision.models.segment_anything.plots import show_box, show_mask, show_points

NAME = "ch11_sam"
PROFILES = {"book": {"limit": 49}, "quick": {"limit": 8}}
# x, y in the 1024 × 1024 resize_and_pad frame of the cheetah photo (1400 × 840: rows 205-819).
BOOK_PROMPTS = {"point": [[453, 424]],  # its face (the book's peach)
                "second_point": [[878, 687]],  # its flank (the book's banana)
                "box": [241, 241, 709, 644]}  # its head (the book's mango)


def numbers(text: str, count: int, flag: str) -> list[float]:
    values = text.split(",")
    if len(values) != count:
        raise _common.UsageError(f"{flag} expects {count} comma-separated numbers, got {text!r}")
    try:
        return [float(v) for v in values]
    except ValueError:
        raise _common.UsageError(f"{flag} expects numbers, got {text!r}") from None


def load_uint8(path: Path) -> np.ndarray:
    try:
        with open_image(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def centroid_point(mask: np.ndarray) -> np.ndarray:
    """The mask's centroid as x, y; the nearest mask pixel when the centroid is outside it."""
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    if not mask[int(round(cy)), int(round(cx))]:
        nearest = np.argmin((xs - cx) ** 2 + (ys - cy) ** 2)
        cx, cy = xs[nearest], ys[nearest]
    return np.array([[float(cx), float(cy)]])


def foreground_iou(pred: np.ndarray, trimap_classes: np.ndarray) -> float:
    """IoU of a boolean mask with the horse (class 0), ignoring the boundary band (class 2)."""
    valid = trimap_classes != 2
    truth = trimap_classes == 0
    inter = np.sum(pred & truth & valid)
    union = np.sum((pred | truth) & valid)
    return float(inter / union)


def draw(path: Path, image: np.ndarray, title: str | None = None, mask=None, points=None, labels=None,
         box=None) -> Path:
    """The photo, a mask over it and the prompts drawn, with an optional two-line title above."""
    height, top = 6 * image.shape[0] / image.shape[1], 0.7 if title else 0.0
    fig = Figure(figsize=(6, height + top))
    ax = fig.add_axes((0, 0, 1, height / (height + top)))
    ax.imshow(image)
    if mask is not None:
        show_mask(mask, ax)
    if points is not None:
        show_points(np.asarray(points), np.ones(len(points), int) if labels is None else labels, ax)
    if box is not None:
        show_box(np.asarray(box), ax)
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9, y=0.995, va="top")
    FigureCanvasAgg(fig).print_png(path)
    return path


def draw_candidates(path: Path, image: np.ndarray, masks: np.ndarray, iou: np.ndarray, points, labels, box,
                    title: str | None = None) -> Path:
    """The candidate masks side by side, each titled with its predicted IoU."""
    fig = Figure(figsize=(4 * len(masks), 4 * image.shape[0] / image.shape[1] + 0.4 + 0.5 * bool(title)))
    for i, (mask, score) in enumerate(zip(masks, iou)):
        ax = fig.add_subplot(1, len(masks), i + 1)
        ax.imshow(image)
        show_mask(mask, ax)
        if points is not None:
            show_points(points, labels, ax, marker_size=200)
        if box is not None:
            show_box(box, ax)
        ax.set_title(f"mask {i + 1}: predicted IoU {score:.3f}")
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(path)
    return path


def save_figures(out: Path, image: np.ndarray, masks: np.ndarray, iou: np.ndarray, points, labels, box) -> None:
    draw(out / "prompt_mask.png", image, mask=masks[int(np.argmax(iou))], points=points, labels=labels, box=box)
    draw_candidates(out / "candidates.png", image, masks, iou, points, labels, box)


def book_figures(args, predictor: SamPredictor, drawn_by: str) -> dict:
    """Figures 11.9-11.15 (see the module docstring); masks as the predictor returns them."""
    path = args.image or _common.data_root() / "images" / "cheetah.jpg"
    image = np.clip(np.round(resize_and_pad(load_uint8(path))), 0, 255).astype(np.uint8)
    predictor.set_image(image)
    point, second, box = (np.array(BOOK_PROMPTS[k], np.float64) for k in ("point", "second_point", "box"))
    one = np.array([1])
    first_mask, first_iou, _ = predictor.predict(point, one, multimask_output=False)
    second_mask, second_iou, _ = predictor.predict(second, one, multimask_output=False)
    candidates, candidates_iou, _ = predictor.predict(second, one, multimask_output=True)
    boxed, box_iou, _ = predictor.predict(box=box, multimask_output=False)
    out, note = args.out, f"\ndrawn by {drawn_by}"
    written = [draw(out / "figure_11_9.png", image,
                    f"Figure 11.9: the test image ({path.name}, resize_and_pad to 1024 × 1024){note}"),
               draw(out / "figure_11_10.png", image, f"Figure 11.10: a prompt point{note}", points=point),
               draw(out / "figure_11_11.png", image, f"Figure 11.11: the point's mask{note}", first_mask[0], point),
               draw(out / "figure_11_12.png", image, f"Figure 11.12: a second point's mask{note}", second_mask[0], second),
               draw_candidates(out / "figure_11_13.png", image, candidates, candidates_iou, second, one, None,
                               title=f"Figure 11.13: alternative masks for the second point{note}"),
               draw(out / "figure_11_14.png", image, f"Figure 11.14: a box prompt{note}", box=box),
               draw(out / "figure_11_15.png", image, f"Figure 11.15: the box's mask{note}", boxed[0], box=box)]
    return {"image": str(path), "drawn_by": drawn_by, "prompts": BOOK_PROMPTS, "figures": [str(f) for f in written],
            "predicted_iou": {"point": first_iou.tolist(), "second_point": second_iou.tolist(),
                              "second_point_candidates": candidates_iou.tolist(), "box": box_iou.tolist()}}


def prompts_from_flags(args) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``--point``/``--label``/``--box`` as arrays, checked before any model is loaded."""
    points = labels = box = None
    if args.point:
        points = np.array([numbers(p, 2, "--point") for p in args.point])
        labels = np.array(args.label if args.label else [1] * len(points))
        if len(labels) != len(points):
            raise _common.UsageError(f"{len(points)} --point but {len(labels)} --label")
    if args.box:
        box = np.array(numbers(args.box, 4, "--box"))
    return points, labels, box


def segment_image(args, predictor: SamPredictor, points, labels, box) -> dict:
    image = load_uint8(args.image)
    h, w = image.shape[:2]
    if points is None and box is None:
        points, labels = np.array([[w / 2, h / 2]]), np.array([1])
    predictor.set_image(image)
    masks, iou, _ = predictor.predict(points, labels, box, multimask_output=True)
    _common.say(f"{NAME}: {args.image} ({w}x{h}); predicted IoU of the 3 candidates: "
          + ", ".join(f"{v:.3f}" for v in iou))
    save_figures(args.out, image, masks, iou, points, labels, box)
    return {"image": str(args.image), "points": None if points is None else points.tolist(),
            "labels": None if labels is None else labels.tolist(), "box": None if box is None else box.tolist(),
            "predicted_iou": iou.tolist(), "mask_pixels": masks.reshape(len(masks), -1).sum(1).tolist()}


def score_horses(args, predictor: SamPredictor) -> dict:
    data_dir = args.data_dir or _common.data_root() / "weizmann_horse"
    pairs = oxford_pet_pairs(data_dir, split="test")[:args.limit]
    best_ious, single_ious, rows = [], [], []
    for i, (image_path, trimap_path) in enumerate(pairs):
        image = load_uint8(image_path)
        with open_image(trimap_path) as t:
            classes = np.asarray(t).astype(np.int64) - 1  # 0 horse, 1 background, 2 band
        point = centroid_point(classes == 0)
        predictor.set_image(image)
        masks, iou, _ = predictor.predict(point, np.array([1]), multimask_output=True)
        single, _, _ = predictor.predict(point, np.array([1]), multimask_output=False)
        best = int(np.argmax(iou))
        best_ious.append(foreground_iou(masks[best], classes))
        single_ious.append(foreground_iou(single[0], classes))
        rows.append({"stem": image_path.stem, "point": point[0].tolist(), "predicted_iou": iou.tolist(),
                     "foreground_iou_best": best_ious[-1], "foreground_iou_single": single_ious[-1]})
        _common.say(f"{image_path.stem}: point {point[0].round(1).tolist()}, predicted IoU "
              + ", ".join(f"{v:.3f}" for v in iou) + f"; foreground IoU {best_ious[-1]:.3f} (best of 3), "
              f"{single_ious[-1]:.3f} (single)")
        if i == 0:
            save_figures(args.out, image, masks, iou, point, np.array([1]), None)
    summary = {"images": len(pairs), "data_dir": str(data_dir), "split": "test",
               "mean_foreground_iou_best_of_3": float(np.mean(best_ious)),
               "mean_foreground_iou_single_mask": float(np.mean(single_ious)), "per_image": rows}
    _common.say(f"{NAME}: one-point prompt at the mask centroid on {len(pairs)} test horses: mean foreground IoU "
          f"{summary['mean_foreground_iou_best_of_3']:.4f} (best of 3), "
          f"{summary['mean_foreground_iou_single_mask']:.4f} (single mask)")
    return summary


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--checkpoint", type=Path, default=None, help="SAM weights: official .pth, HF .safetensors "
                   "or a KerasHub preset directory")
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--image", type=Path, default=None, help="segment this photo instead of scoring the horse set")
    p.add_argument("--point", action="append", default=[], help="x,y in image pixels (repeatable)")
    p.add_argument("--label", action="append", type=int, default=[], help="1 foreground / 0 background, per --point")
    p.add_argument("--box", default=None, help="x0,y0,x1,y1 in image pixels")
    p.add_argument("--limit", type=int, default=None, help="score only the first N test horses")
    p.add_argument("--book-figures", action="store_true", help="draw the book's figures 11.9-11.15")
    args = _common.apply_profile(p.parse_args(argv), PROFILES)
    if args.checkpoint is None:
        raise _common.UsageError(f"no --checkpoint given; no SAM weights ship with jaxvision. Pass {DOWNLOAD_HINT}.")
    prompts = prompts_from_flags(args)
    with _common.Timer() as load_time:
        sam, info = load_sam(args.checkpoint)
    _common.say(f"{NAME}: {info.variant} from {info.path} ({info.format}), sha256 {info.sha256}"
          + (f", official {info.release}" if info.release else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    predictor = SamPredictor(sam)
    with _common.Timer() as run_time:
        if args.book_figures:
            drawn_by = f"SAM {info.variant} ({Path(info.path).name})"
            if info.variant == "tiny":
                drawn_by += ": random test weights, the masks mean nothing"
            result = book_figures(args, predictor, drawn_by)
        elif args.image:
            result = segment_image(args, predictor, *prompts)
        else:
            result = score_horses(args, predictor)
    metrics = {"experiment": NAME, "profile": args.profile, "checkpoint": info.path, "format": info.format,
               "variant": info.variant, "sha256": info.sha256, "md5": info.md5, "release": info.release,
               "load_seconds": load_time.seconds,
               "run_seconds": run_time.seconds, **result}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
