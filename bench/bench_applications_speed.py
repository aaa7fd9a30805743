"""Train-step and inference throughput (images/s) of the depthwise and modern applications
against Keras 3 (JAX backend) on this machine, in one run: MobileNetV2, MobileNetV3Large,
EfficientNetB0 and ConvNeXtTiny at 224 px, batch 16, 1000 classes, random weights and data.

    python bench/bench_applications_speed.py [--models mobilenet_v2 ...] [--steps 4] [--repeats 3] [--batch 16] [--out FILE]

As bench/bench_training.py: each library compiles first (a 2-step ``fit`` and a ``predict``);
then, ``--repeats`` times and alternating the libraries (so a busy machine slows both alike),
each trains one timed epoch of ``--steps`` batches and predicts the same images. Medians give
images/s; the ratio of CPU times (all threads of the process) is the steadier measure when the
machine is shared. Keras's Adam (``jaxvision.optimizers.Adam`` is Keras-exact) and sparse
categorical cross-entropy in both. Depthwise convolutions run on jaxvision's CPU path
(shifted slices, ``jaxvision.layers.depthwise``); Keras runs XLA's grouped convolution.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "applications")]

import flax  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402

from bench_training import EpochTimes, synthetic  # noqa: E402
from jaxvision.environment import device_description  # noqa: E402
from jaxvision.models import build_model  # noqa: E402
from jaxvision.optimizers import Adam  # noqa: E402
from jaxvision.train import fit, predict  # noqa: E402
from modern_twins import numpy_initialisers  # noqa: E402

KERAS_NAMES = {"mobilenet_v2": "MobileNetV2", "mobilenet_v3_large": "MobileNetV3Large",
               "efficientnet_b0": "EfficientNetB0", "convnext_tiny": "ConvNeXtTiny"}
SIZE, BATCH, CLASSES = 224, 16, 1000


def bench(name: str, steps: int, repeats: int, batch: int = BATCH) -> dict:
    x, y = synthetic((SIZE, SIZE, 3), batch, steps, "sparse_categorical_crossentropy", CLASSES, masks=False)
    loss = "sparse_categorical_crossentropy"
    model, optimizer = build_model(name), Adam(1e-3)
    with numpy_initialisers():
        twin = getattr(keras.applications, KERAS_NAMES[name])(weights=None, input_shape=(SIZE, SIZE, 3))
    twin.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    runs = {
        "jaxvision": (lambda data, cb=(): fit(model, data, epochs=1, batch_size=batch, loss=loss, optimizer=optimizer,
                                               callbacks=list(cb), verbose=0),
                      lambda: predict(model, x, batch_size=batch)),
        "keras": (lambda data, cb=(): twin.fit(*data, epochs=1, batch_size=batch, callbacks=list(cb), verbose=0),
                  lambda: twin.predict(x, batch_size=batch, verbose=0)),
    }
    for train, infer in runs.values():  # compile
        train((x[:2 * batch], y[:2 * batch]))
        infer()
    train_times = {lib: EpochTimes() for lib in runs}
    infer_times = {lib: ([], []) for lib in runs}
    for _ in range(repeats):
        for lib, (train, infer) in runs.items():
            train((x, y), [train_times[lib]])
            start, cpu = time.perf_counter(), time.process_time()
            infer()
            infer_times[lib][0].append(time.perf_counter() - start)
            infer_times[lib][1].append(time.process_time() - cpu)
    row = {"model": name, "input": [SIZE, SIZE, 3], "batch_size": batch, "steps": steps, "repeats": repeats}
    for lib in runs:
        row[f"{lib}_train_images_per_s"] = len(x) / statistics.median(train_times[lib].seconds)
        row[f"{lib}_train_images_per_cpu_s"] = len(x) / statistics.median(train_times[lib].cpu_seconds)
        row[f"{lib}_train_images_per_s_each"] = [round(len(x) / t, 2) for t in train_times[lib].seconds]
        row[f"{lib}_infer_images_per_s"] = len(x) / statistics.median(infer_times[lib][0])
        row[f"{lib}_infer_images_per_cpu_s"] = len(x) / statistics.median(infer_times[lib][1])
        row[f"{lib}_infer_images_per_s_each"] = [round(len(x) / t, 2) for t in infer_times[lib][0]]
    for kind in ("train", "infer"):
        row[f"{kind}_speedup"] = row[f"jaxvision_{kind}_images_per_s"] / row[f"keras_{kind}_images_per_s"]
        row[f"{kind}_speedup_cpu_time"] = (row[f"jaxvision_{kind}_images_per_cpu_s"]
                                           / row[f"keras_{kind}_images_per_cpu_s"])
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(KERAS_NAMES), choices=list(KERAS_NAMES))
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=BATCH, help="batch size (ConvNeXtTiny at 16 ran out of memory here)")
    p.add_argument("--out", type=Path, default=Path("bench_applications_speed.json"))
    args = p.parse_args(argv)
    results = {"machine": device_description(),
               "versions": {"jax": jax.__version__, "keras": keras.__version__, "flax": flax.__version__},
               "models": [bench(m, args.steps, args.repeats, args.batch) for m in args.models]}
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
