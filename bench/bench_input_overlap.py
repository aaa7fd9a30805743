"""Is the train step waiting on input? The MNIST convnet fed from a host iterable whose every
batch costs ``h`` seconds of host latency (I/O, decoding in grain's threads or workers),
against the same steps on device-resident arrays.

Run:
    python bench/bench_input_overlap.py [--steps 30] [--batch 64] [--out runs/bench_input_overlap.json]

``fit`` keeps two batches uploaded ahead and dispatches steps asynchronously, so the host
prepares batch i+2 while the devices run step i: an epoch should take about
``steps * max(step, h)``, not ``steps * (step + h)``. ``h`` is set to the measured step time,
the case where a loop without overlap would be twice as slow. Three epochs each; the first
(compilation) is dropped and the median of the others reported.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import optax

from jaxvision.environment import device_description
from jaxvision.models import build_model
from jaxvision.train import Callback, fit

EPOCHS = 3


class EpochTimer(Callback):
    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, epoch, trainer):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs, trainer):
        self.seconds.append(time.perf_counter() - self.start)  # logs were fetched: the epoch's steps are done


class SlowBatches:
    """Batches of ``(x, y)`` that each take ``latency`` seconds of host time to produce."""

    def __init__(self, x, y, batch, latency):
        self.x, self.y, self.batch, self.latency = x, y, batch, latency

    def __len__(self):
        return len(self.x) // self.batch

    def __iter__(self):
        for start in range(0, len(self.x), self.batch):
            time.sleep(self.latency)
            yield self.x[start:start + self.batch], self.y[start:start + self.batch]


def epoch_seconds(data, batch: int) -> float:
    timer = EpochTimer()
    fit(build_model("mnist_convnet", seed=0), data, epochs=EPOCHS, batch_size=batch, shuffle=False,
        loss="sparse_categorical_crossentropy", optimizer=optax.adam(1e-3), metrics=["accuracy"],
        callbacks=[timer], verbose=0)
    return statistics.median(timer.seconds[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("runs/bench_input_overlap.json"))
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.steps * args.batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, len(x)).astype(np.int32)

    resident = epoch_seconds((x, y), args.batch)
    step = resident / args.steps
    fed = epoch_seconds(SlowBatches(x, y, args.batch, latency=step), args.batch)
    host = args.steps * step
    row = {"device": device_description(), "steps": args.steps, "batch": args.batch,
           "step_ms": 1e3 * step, "host_latency_ms": 1e3 * step, "resident_epoch_s": resident,
           "host_only_epoch_s": host, "fed_epoch_s": fed, "no_overlap_epoch_s": resident + host,
           "fed_over_max": fed / max(resident, host), "fed_over_sum": fed / (resident + host)}
    print(json.dumps(row, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
