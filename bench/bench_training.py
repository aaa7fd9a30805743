"""Training throughput (images/s) of the book's models: jaxvision against Keras 3 on the JAX
backend, in one run on one machine, plus the input pipeline with augmentation.

Run:
    python bench/bench_training.py [--models mnist dogs dogs_quick xception segmenter] [--steps 32] [--repeats 3]
        [--out bench_results.json]

Each library first compiles its train step with a 2-step ``fit``; then, ``--repeats`` times and
alternating the libraries (so a busy machine slows both alike), each trains one timed epoch of
``--steps`` batches of random data. The median epoch time gives images/s; every repeat's
numbers are kept in the output, with the epochs' process CPU time. Both use Keras's Adam and the
book's loss; the mini-Xception includes the listing 8.18 augmentation in both; ``dogs_quick`` is
the Dogs-vs-Cats convnet at the quick profile's 80 px; the segmenter is the ch. 11 ``get_model``
at 64 px, batch 16 (its quick profile).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import flax  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_twins  # noqa: E402
from jaxvision.data import image_dataset_from_directory  # noqa: E402
from jaxvision.layers import AugmentBatch, RandomFlip, RandomRotation, RandomZoom  # noqa: E402
from jaxvision.models import build_model  # noqa: E402
from jaxvision.optimizers import Adam  # noqa: E402
from jaxvision.environment import device_description  # noqa: E402
from jaxvision.train import Callback, fit  # noqa: E402
from flax import nnx  # noqa: E402



def keras_augmentation():
    return keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                             keras.layers.RandomZoom(0.2)])


# name: (jaxvision builder, its kwargs, keras twin factory, input shape, batch size, loss, num classes,
# metrics). The segmenter's labels are per-pixel masks.
MODELS = {
    "mnist": ("mnist_convnet", {}, lambda: keras_twins.keras_mnist_convnet(keras), (28, 28, 1), 64,
              "sparse_categorical_crossentropy", 10, ["accuracy"]),
    "dogs": ("dogs_vs_cats_convnet", {}, lambda: keras_twins.keras_dogs_vs_cats_convnet(keras, 180),
             (180, 180, 3), 32, "binary_crossentropy", 2, ["accuracy"]),
    "dogs_quick": ("dogs_vs_cats_convnet", {}, lambda: keras_twins.keras_dogs_vs_cats_convnet(keras, 80),
                   (80, 80, 3), 32, "binary_crossentropy", 2, ["accuracy"]),  # the quick profile's size
    "xception": ("mini_xception", {}, lambda: keras_twins.keras_mini_xception(keras, 180, keras_augmentation()),
                 (180, 180, 3), 32, "binary_crossentropy", 2, ["accuracy"]),
    "segmenter": ("segmentation_model", {"image_size": [64, 64]}, lambda: keras_twins.keras_segmenter(keras, (64, 64)),
                  (64, 64, 3), 16, "sparse_categorical_crossentropy", 3, []),
}


class EpochTimes(Callback, keras.callbacks.Callback):
    """Wall time and process CPU time of each epoch, as a callback of either library. On a shared
    machine the CPU time (all threads of this process) is the steadier measure of the work done."""

    def __init__(self):
        keras.callbacks.Callback.__init__(self)
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_train_begin(self, *args, **kwargs):  # the two libraries pass different arguments
        pass

    def on_train_end(self, *args, **kwargs):
        pass

    def on_epoch_begin(self, epoch, *args, **kwargs):
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, *args, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


def synthetic(shape, batch, steps, loss, classes, masks: bool):
    rng = np.random.default_rng(0)
    x = (rng.random((batch * steps, *shape)) * 255).astype(np.float32)
    y = rng.integers(0, classes, (batch * steps, *shape[:2]) if masks else batch * steps)
    return x, (y.astype(np.float32)[:, None] if loss == "binary_crossentropy" else y.astype(np.int32))


def bench_model(key: str, steps: int, repeats: int) -> dict:
    builder, kwargs, keras_factory, shape, batch, loss, classes, metrics = MODELS[key]
    x, y = synthetic(shape, batch, steps, loss, classes, masks=key == "segmenter")
    warm_up = (x[:2 * batch], y[:2 * batch])
    model, optimizer = build_model(builder, **kwargs), Adam(1e-3)  # Keras-exact, as the twin's

    def ours(data, callbacks=()):
        # The same optimizer object each time, so later fits reuse the compiled steps.
        fit(model, data, epochs=1, batch_size=batch, loss=loss, optimizer=optimizer, metrics=metrics,
            callbacks=list(callbacks), verbose=0)

    twin = keras_factory()
    twin.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)

    def theirs(data, callbacks=()):
        twin.fit(*data, epochs=1, batch_size=batch, shuffle=True, callbacks=list(callbacks), verbose=0)

    ours(warm_up)
    theirs(warm_up)
    times = {"jaxvision": EpochTimes(), "keras": EpochTimes()}
    for _ in range(repeats):  # alternate, so load from other processes hits both libraries
        ours((x, y), [times["jaxvision"]])
        theirs((x, y), [times["keras"]])
    row = {"model": builder, "input": list(shape), "batch_size": batch, "timed_steps_per_repeat": steps,
           "repeats": repeats}
    for library, timer in times.items():
        row[f"{library}_images_per_s"] = len(x) / statistics.median(timer.seconds)
        row[f"{library}_images_per_s_each"] = [round(len(x) / t, 2) for t in timer.seconds]
        row[f"{library}_images_per_cpu_s"] = len(x) / statistics.median(timer.cpu_seconds)
    row["speedup"] = row["jaxvision_images_per_s"] / row["keras_images_per_s"]
    row["speedup_cpu_time"] = row["jaxvision_images_per_cpu_s"] / row["keras_images_per_cpu_s"]
    print(json.dumps(row), flush=True)
    return row


def bench_pipeline(data_dir: Path, image_size: int = 180, batch: int = 32) -> dict:
    """One epoch of the Dogs-vs-Cats train split: decode, resize, batch and augment."""
    rngs = nnx.Rngs(augment=0)
    augment = AugmentBatch([RandomFlip("horizontal", rngs=rngs), RandomRotation(0.1, rngs=rngs),
                            RandomZoom(0.2, rngs=rngs)])
    data = image_dataset_from_directory(data_dir, image_size=(image_size, image_size), batch_size=batch,
                                        seed=0, label_mode="binary", batch_transform=augment)
    next(iter(data))  # compile the augmentation once
    start, images = time.perf_counter(), 0
    for x, _ in data:
        images += len(x)
    row = {"pipeline": "image_dataset_from_directory + flip/rotation/zoom", "image_size": image_size,
           "batch_size": batch, "images": images, "images_per_s": images / (time.perf_counter() - start)}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=32, help="timed steps per repeat and library")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pipeline-dir", type=Path,
                   default=Path(os.environ.get("JAXVISION_DATA", "../shared/data")) / "dogs_vs_cats_small" / "train")
    p.add_argument("--out", type=Path, default=Path("bench_results.json"))
    args = p.parse_args(argv)
    results = {"machine": device_description(),
               "versions": {"jax": jax.__version__, "keras": keras.__version__, "flax": flax.__version__},
               "models": [bench_model(m, args.steps, args.repeats) for m in args.models]}
    if args.pipeline_dir.exists():
        results["pipeline"] = bench_pipeline(args.pipeline_dir)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
