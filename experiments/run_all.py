"""Run every chapter experiment with one profile and write one summary table.

Run:
    python experiments/run_all.py --profile book   # the book's protocols, meant for one GPU
    python experiments/run_all.py --profile quick  # ≤ 20 minutes per experiment on a 2-core CPU
Flags: --out DIR (default runs/), --only NAME [NAME ...], --policy float32|mixed_bfloat16 (passed
to the training scripts), --compile-cache DIR (jax's persistent compilation cache, so a second
run compiles nothing). Data comes from $JAXVISION_DATA.

On an accelerator every training set is uploaded once and batches are gathered on the device;
each model compiles its train step once per batch shape (full batches and the partial last
one) and one evaluation step, whatever the number of epochs.

Writes each experiment's folder under --out, then ``summary.md`` and ``summary.json`` there.
Interpretation experiments (ch. 10) run last, on the checkpoints the others wrote and on the
pretrained ImageNet MobileNet. A failing
experiment does not stop the others: the summary lists it with its error, and the exit
status is 1 (``--debug`` also prints its traceback). Finished experiments are not trained
again unless ``--force``.
The book numbers of the ``ch08_pretrained_*`` rows are its Xception's; the default backbone
here is MobileNet α 0.75 (see RESULTS.md).
"""

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

import jax

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
    ("ch11_segmentation_unet", "ch11_segmentation", ["--variant", "unet"], "test_foreground_iou", None),
    ("ch10_activations", "ch10_activations", ["--checkpoint", "{out}/ch08_dogs_vs_cats_augmented/checkpoint"], None, None),
    ("ch10_filters", "ch10_filters", ["--checkpoint", "{out}/ch09_mini_xception/checkpoint"], None, None),
    ("ch10_gradcam", "ch10_gradcam", ["--checkpoint", "{out}/ch09_mini_xception/checkpoint"], None, None),
    ("ch10_filters_imagenet", "ch10_filters", [], None, None),  # the pretrained MobileNet
    ("ch10_gradcam_imagenet", "ch10_gradcam", [], None, None),  # the elephant, figure 10.9
    ("ch10_attribution", "ch10_attribution", [], None, None),  # every CAM and attribution, the MobileNet
]
# These take no --profile / --data-dir.
INTERPRET = {"ch10_activations", "ch10_filters", "ch10_gradcam", "ch10_filters_imagenet", "ch10_gradcam_imagenet"}
PROFILE_ONLY = {"ch10_attribution"}  # takes --profile but not --policy / --force


def main(argv: list[str] | None = None) -> list[dict]:
    p = _common.base_parser(__doc__, "run_all")
    p.set_defaults(out=Path("runs"))
    p.add_argument("--profile", choices=("book", "quick"), default="book")
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--policy", choices=_common.POLICIES, default="float32")
    p.add_argument("--compile-cache", type=Path, default=None)
    p.add_argument("--force", action="store_true", help="train finished experiments again")
    args = p.parse_args(argv)
    if args.compile_cache is not None:
        jax.config.update("jax_compilation_cache_dir", str(args.compile_cache))
    rows = []
    for name, module_name, flags, metric, book in EXPERIMENTS:
        if args.only and name not in args.only:
            continue
        flags = [f.format(out=args.out) for f in flags] + ["--out", str(args.out / name)]
        if name in PROFILE_ONLY:
            flags += ["--profile", args.profile]
        elif name not in INTERPRET:
            flags += ["--profile", args.profile, "--policy", args.policy] + ["--force"] * args.force
        _common.say(f"=== {name} {' '.join(flags)}")
        start = time.perf_counter()
        row = {"experiment": name, "metric": metric, "book": book}
        try:
            metrics = importlib.import_module(module_name).main(flags)
        except Exception as error:  # one failing experiment must not stop the others
            if args.debug:
                traceback.print_exc()
            row["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
            _common.say(f"=== {name} failed: {row['error']}")
            metrics = {}
        rows.append({**row, "value": metrics.get(metric) if metric else None, "epochs": metrics.get("epochs"),
                     "image_size": metrics.get("image_size"), "seconds": round(time.perf_counter() - start, 1)})
    device = _common.device_description()
    lines = [f"Profile `{args.profile}`, policy `{args.policy}`, on {device}", "",
             "| experiment | metric | ours | book | epochs | image size | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        value = "failed" if "error" in r else "—" if r["value"] is None else f"{r['value']:.4f}"
        lines.append(f"| {r['experiment']} | {r['metric'] or 'figures'} | {value} | {r['book'] or '—'} | "
                     f"{r['epochs'] or '—'} | {r['image_size'] or '—'} | {r['seconds']} |")
    failures = [r for r in rows if "error" in r]
    if failures:
        lines += ["", f"{len(failures)} failed:", *(f"- {r['experiment']}: {r['error']}" for r in failures)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps({"profile": args.profile, "policy": args.policy, "device": device, "rows": rows}, indent=2))
    _common.say("\n".join(lines))
    return rows


if __name__ == "__main__":
    sys.exit(1 if any("error" in row for row in _common.run(main)) else 0)
