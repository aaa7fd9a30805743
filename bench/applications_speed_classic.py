"""Inference and training-step throughput (images/s) of ResNet50, DenseNet121 and InceptionV3:
jaxvision against Keras 3 on the JAX backend, in one process on one machine, on the same weights.

Run (from the repository root):
    KERAS_BACKEND=jax python bench/applications_speed_classic.py [--models ResNet50 DenseNet121 InceptionV3]
        [--size 224] [--batch 16] [--steps 3] [--repeats 3]

Keras builds each model (random weights) and writes them; jaxvision loads them. Each library
first compiles its ``predict`` and its ``fit`` train step (Keras's Adam, sparse categorical
cross-entropy, batch statistics on); then, ``--repeats`` times and alternating the libraries
(jaxvision, Keras, jaxvision, Keras … so load from other processes on a shared machine hits
both alike), each predicts ``--steps`` batches and trains one epoch of ``--steps`` batches of
random data. Images/s are from the median time; the ratio is taken pair by pair (each
jaxvision repeat against the Keras repeat right after it) and its median reported. Writes
``runs/applications_speed_classic/metrics.json``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "weights"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from classic_parity import numpy_glorot_kernels  # noqa: E402
from jaxvision import applications  # noqa: E402
from jaxvision.environment import device_description  # noqa: E402
from jaxvision.optimizers import Adam  # noqa: E402
from jaxvision.train import fit, predict  # noqa: E402

LOSS = "sparse_categorical_crossentropy"


def bench(name: str, size: int, batch: int, steps: int, repeats: int, folder: Path) -> dict:
    keras.backend.clear_session()
    with numpy_glorot_kernels(0):
        twin = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    twin.save_weights(folder / f"{name}.weights.h5")
    model = getattr(applications, name)(weights=folder / f"{name}.weights.h5", input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch * steps, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 1000, batch * steps).astype(np.int32)
    optimizer = Adam(1e-4)  # Keras-exact; the same object each time, so fit reuses its compiled step
    twin.compile(optimizer=keras.optimizers.Adam(1e-4), loss=LOSS)

    def ours_predict(n):
        predict(model, x[:n], batch_size=batch)

    def theirs_predict(n):
        twin.predict(x[:n], batch_size=batch, verbose=0)

    def ours_train(n):
        fit(model, (x[:n], y[:n]), epochs=1, batch_size=batch, loss=LOSS, optimizer=optimizer, verbose=0)

    def theirs_train(n):
        twin.fit(x[:n], y[:n], epochs=1, batch_size=batch, verbose=0)

    row = {"model": name, "input": [size, size, 3], "batch_size": batch, "timed_batches": steps, "repeats": repeats}
    for task, pair in (("inference", (ours_predict, theirs_predict)), ("train_step", (ours_train, theirs_train))):
        start = time.perf_counter()
        for fn in pair:
            fn(batch)  # compile
        row[f"{task}_compile_s_both"] = round(time.perf_counter() - start, 1)
        seconds = {"jaxvision": [], "keras": []}
        for _ in range(repeats):
            for library, fn in zip(seconds, pair):
                start = time.perf_counter()
                fn(len(x))
                seconds[library].append(time.perf_counter() - start)
        for library, times in seconds.items():
            row[f"{task}_{library}_images_per_s"] = round(len(x) / statistics.median(times), 2)
            row[f"{task}_{library}_images_per_s_each"] = [round(len(x) / t, 2) for t in times]
        row[f"{task}_speedup"] = round(statistics.median(k / j for j, k in zip(seconds["jaxvision"],
                                                                                seconds["keras"])), 3)
        print(json.dumps({k: v for k, v in row.items() if k.startswith(task)}), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=["ResNet50", "DenseNet121", "InceptionV3"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="runs/applications_speed_classic")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            rows.append(bench(name, args.size, args.batch, args.steps, args.repeats, Path(folder)))
    print("\n| model | task | jaxvision images/s | Keras images/s | ratio (median of pairs) |")
    print("|---|---|---|---|---|")
    for r in rows:
        for task in ("inference", "train_step"):
            print(f"| {r['model']} | {task} | {r[f'{task}_jaxvision_images_per_s']} | {r[f'{task}_keras_images_per_s']}"
                  f" | {r[f'{task}_speedup']}× |")
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, "metrics.json").write_text(json.dumps({"device": device_description(), "keras": keras.__version__,
                                                          "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
