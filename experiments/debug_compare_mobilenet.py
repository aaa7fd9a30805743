"""Numbers you can trust: jaxvision's MobileNet α 0.75 against Keras's, layer by layer, on the elephant.

Run:
    python experiments/debug_compare_mobilenet.py [--image FILE] [--grads] [--out runs/debug_compare_mobilenet]

Loads the ImageNet MobileNet α 0.75 with its classifier (offline: the TF.js copy in
$JAXVISION_DATA/pretrained/), writes its weights as a Keras ``.weights.h5``, loads them into
``keras.applications.MobileNet(alpha=0.75, weights=None)`` (Keras 3 on JAX, the ``dev`` extra),
and runs ``jaxvision.debug.compare`` on the elephant (Pillow bilinear to 224 × 224,
``preprocess_input``): every layer's activation, and with ``--grads`` every weight's gradient.
Prints the table and the top-3 of both models; writes ``report.txt``, ``errors.png`` (the
relative error of each layer, on a log scale, against the float32 tolerance) and ``metrics.json``.
Exits with status 1 when a layer diverges.
"""

import os
import sys

import matplotlib
import numpy as np

import _ch10
import _common
from jaxvision.applications import decode_predictions, preprocess_input
from jaxvision.debug import compare
from jaxvision.weights import save_keras_weights

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = _common.base_parser(__doc__, "debug_compare_mobilenet")
    p.add_argument("--image", default=None, help="default: $JAXVISION_DATA/images/elephant.jpg")
    p.add_argument("--grads", action="store_true", help="also compare the gradients of every weight")
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: the reference runs beside us
    import keras  # the reference: only needed here, installed with jaxvision[dev]

    image = args.image or _common.data_root() / "images" / "elephant.jpg"
    x = preprocess_input(_ch10.load_photo(image, 224)[None])
    ours = _ch10.pretrained_mobilenet()
    args.out.mkdir(parents=True, exist_ok=True)
    save_keras_weights(ours, args.out / "mobilenet_0.75.weights.h5")
    reference = keras.applications.MobileNet(alpha=0.75, weights=None)
    reference.load_weights(args.out / "mobilenet_0.75.weights.h5")
    with _common.Timer() as timer:
        report = compare(ours, reference, x, grads=args.grads)
    text = str(report)
    print(text)
    top = {name: [(label, round(float(p), 6)) for _, label, p in decode_predictions(np.asarray(probs), top=3)[0]]
           for name, probs in (("jaxvision", ours(x)), ("keras", reference(x)))}
    print("top-3 jaxvision:", top["jaxvision"], "\ntop-3 keras:    ", top["keras"])
    (args.out / "report.txt").write_text(text + "\n")
    rows = [row for row in report.rows if not row.name.startswith("d/d")]
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.semilogy(range(len(rows)), [max(row.max_rel, 1e-12) for row in rows], marker=".")
    ax.axhline(report.tolerance, color="red", linestyle="--", label=f"float32 tolerance {report.tolerance:g}")
    ax.set_xticks(range(0, len(rows), 6), [rows[i].name for i in range(0, len(rows), 6)], rotation=60, fontsize=7)
    ax.set_ylabel("relative error vs Keras")
    ax.set_title(f"MobileNet α 0.75 on {image.name if hasattr(image, 'name') else image}: jaxvision vs Keras 3")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "errors.png", dpi=100)
    plt.close(fig)
    bad = report.first_divergence
    metrics = {"experiment": "debug_compare_mobilenet", "image": str(image), "identical": report.identical,
               "tolerance": report.tolerance, "compared": len(report.rows),
               "first_divergence": None if bad is None else bad.name, "notes": report.notes,
               "largest_relative_error": max(row.max_rel for row in report.rows),
               "largest_absolute_error": max(row.max_abs for row in report.rows), "top3": top,
               "seconds": timer.seconds}
    metrics = _common.write_metrics(args, metrics)
    if not report.identical:
        sys.exit(1)
    return metrics


if __name__ == "__main__":
    _common.run(main)
