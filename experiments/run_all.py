"""Run every chapter experiment with one profile and write one summary table.

Run:
    python experiments/run_all.py --profile book   # the book's protocols, meant for one GPU
    python experiments/run_all.py --profile quick  # ≤ 20 minutes per experiment on a 2-core CPU
Flags: --out DIR (default runs/), --only NAME [NAME ...]. Data comes from $JAXVISION_DATA.

Writes each experiment's folder under --out, then ``summary.md`` and ``summary.json`` there.
Interpretation experiments (ch. 10) run last, on the checkpoints the others wrote and on the
pretrained ImageNet MobileNet. The book numbers of the ``ch08_pretrained_*`` rows are its
Xception's; the default backbone here is MobileNet α 0.75 (see RESULTS.md).
"""

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import _common

# (run name, module, extra flags, the metric reported, the book's number)
EXPERIMENTS = [
    ("ch08_mnist_convnet", "ch08_mnist_convnet", [], "test_accuracy", 0.991),
    ("ch08_dogs_vs_cats_scratch", "ch08_dogs_vs_cats", ["--variant", "scratch"], "test_accuracy", 0.786),
    ("ch08_dogs_vs_cats_augmented", "ch08_dogs_vs_cats", ["--variant", "augmented"], "test_accuracy", 0.839),
    ("ch08_pretrained_features", "ch08_pretrained", ["--variant", "features"], "test_accuracy", 0.981),
    ("ch08_pretrained_augmented", "ch08_pretrained", ["--variant", "augmented"], "test_accuracy", 0.984),
    ("ch08_pretrained_finetune", "ch08_pretrained",
     ["--variant", "finetune", "--from", "{out}/ch08_pretrained_augmented/checkpoint"], "test_accuracy", 0.986),
    ("ch09_residual_blocks", "ch09_residual_blocks", [], "test_accuracy", None),
    ("ch09_mini_xception", "ch09_mini_xception", [], "test_accuracy", 0.908),
    ("ch11_segmentation", "ch11_segmentation", [], "test_foreground_iou", None),
    ("ch11_segmentation_improved", "ch11_segmentation", ["--variant", "improved"], "test_foreground_iou", None),
    ("ch10_activations", "ch10_activations", ["--checkpoint", "{out}/ch08_dogs_vs_cats_scratch/checkpoint"], None, None),
    ("ch10_filters", "ch10_filters", ["--checkpoint", "{out}/ch09_mini_xception/checkpoint"], None, None),
    ("ch10_gradcam", "ch10_gradcam", ["--checkpoint", "{out}/ch09_mini_xception/checkpoint"], None, None),
    ("ch10_filters_imagenet", "ch10_filters", [], None, None),  # the pretrained MobileNet
    ("ch10_gradcam_imagenet", "ch10_gradcam", [], None, None),  # the elephant, figure 10.9
]
# These take no --profile / --data-dir.
INTERPRET = {"ch10_activations", "ch10_filters", "ch10_gradcam", "ch10_filters_imagenet", "ch10_gradcam_imagenet"}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args(argv)
    rows = []
    for name, module_name, flags, metric, book in EXPERIMENTS:
        if args.only and name not in args.only:
            continue
        flags = [f.format(out=args.out) for f in flags] + ["--out", str(args.out / name)]
        if name not in INTERPRET:
            flags += ["--profile", args.profile]
        print(f"=== {name} {' '.join(flags)}", flush=True)
        start = time.perf_counter()
        metrics = importlib.import_module(module_name).main(flags)
        seconds = time.perf_counter() - start
        rows.append({"experiment": name, "metric": metric, "value": metrics.get(metric) if metric else None,
                     "book": book, "epochs": metrics.get("epochs"), "image_size": metrics.get("image_size"),
                     "seconds": round(seconds, 1)})
    device = _common.device_description()
    lines = [f"Profile `{args.profile}` on {device}", "",
             "| experiment | metric | ours | book | epochs | image size | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        value = "—" if r["value"] is None else f"{r['value']:.4f}"
        lines.append(f"| {r['experiment']} | {r['metric'] or 'figures'} | {value} | {r['book'] or '—'} | "
                     f"{r['epochs'] or '—'} | {r['image_size'] or '—'} | {r['seconds']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps({"profile": args.profile, "device": device, "rows": rows}, indent=2))
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
