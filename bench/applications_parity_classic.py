"""All 13 classic keras.applications constructors against Keras 3 on Keras-written random weights.

For each constructor: Keras builds the model with the top (random kernels, random biases and
BatchNormalization tensors), writes a legacy ``.h5`` and a ``.weights.h5``; jaxvision loads
both (by layer order, and by class and position), checks they give the same weights, and the
outputs are compared in inference mode and with batch statistics. Prints a Markdown table
(max |ours - Keras| / max |Keras| per mode) and writes ``runs/applications_parity_classic/metrics.json``.

Run (from the repository root; ``--size 0`` uses each model's ImageNet size, 224 or 299):
    KERAS_BACKEND=jax JAXVISION_DATA=/work/shared/data python bench/applications_parity_classic.py --size 0
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "weights"))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from classic_parity import jaxvision_outputs, keras_twin, max_relative_error  # noqa: E402
from jaxvision import applications  # noqa: E402
from jaxvision.environment import device_description  # noqa: E402

CONSTRUCTORS = ("VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
                "DenseNet121", "DenseNet169", "DenseNet201", "InceptionV3", "InceptionResNetV2")
IMAGENET_SIZE = {"InceptionV3": 299, "InceptionResNetV2": 299}
SMALLEST = {"InceptionV3": 75, "InceptionResNetV2": 75}


def check(name: str, size: int, batch: int, folder: Path) -> dict:
    start = time.perf_counter()
    twin = keras_twin(keras, name, size, folder, batch=batch)
    constructor = getattr(applications, name)
    from_legacy = constructor(weights=twin.legacy_h5, input_shape=twin.x.shape[1:])
    from_v3 = constructor(weights=twin.weights_h5, input_shape=twin.x.shape[1:])
    same_weights = bool(jax.tree.all(jax.tree.map(np.array_equal, nnx.state(from_legacy), nnx.state(from_v3))))
    inference, training = jaxvision_outputs(from_v3, twin.x)
    return {"constructor": name, "size": size, "batch": batch, "same_weights_from_both_files": same_weights,
            "inference_max_rel": max_relative_error(inference, twin.inference),
            "training_max_rel": max_relative_error(training, twin.training),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=0, help="input side; 0: ImageNet size, -1: Keras's minimum")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--models", nargs="*", default=list(CONSTRUCTORS), choices=CONSTRUCTORS)
    p.add_argument("--out", default="runs/applications_parity_classic")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            size = args.size or IMAGENET_SIZE.get(name, 224)
            size = SMALLEST.get(name, 32) if args.size < 0 else size
            rows.append(check(name, size, args.batch, Path(folder)))
            print(json.dumps(rows[-1]), flush=True)
    ok = all(r["same_weights_from_both_files"] and r["inference_max_rel"] < 1e-5 and r["training_max_rel"] < 1e-5
             for r in rows)
    print("\n| constructor | input | same weights (.h5 / .weights.h5) | inference max rel | batch-stats max rel |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['constructor']} | {r['batch']}×{r['size']}² | {'yes' if r['same_weights_from_both_files'] else 'NO'}"
              f" | {r['inference_max_rel']:.1e} | {r['training_max_rel']:.1e} |")
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, "metrics.json").write_text(json.dumps({"device": device_description(), "keras": keras.__version__,
                                                          "rows": rows, "all_within_1e-5": ok}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
