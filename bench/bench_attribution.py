"""Attribution speed on this machine: jaxvision.interpret (jitted, vmapped) against
pytorch-grad-cam's ScoreCAM and Captum's IntegratedGradients / NoiseTunnel(SmoothGrad), same
model, same weights, same batch, interleaved in one run.

    .venv/bin/python bench/bench_attribution.py --torch-python /tmp/attribution_ref/bin/python [--repeats 3]

The model: four 3 × 3 "same" ReLU convolutions (32, 64, 128, 128 filters, 2 × 2 max-pooling
between them), global average pooling, a 10-way dense layer; random weights (seeded), a batch
of 8 random 64 × 64 × 3 images, each image's class fixed. Score-CAM at the last conv (8 × 8 ×
128: 1,024 masked forward passes, 32 per batch on both sides), integrated gradients with 50
Gauss–Legendre points from a zero baseline (Captum's default rule; all points in one batch
on both sides), SmoothGrad of the plain gradient over 50 noisy copies (σ = 0.15, every image
spanning [0, 1]; one batch on both sides). The torch side runs in ``bench/attribution_torch_worker.py``
under the reference environment's Python with as many threads as this machine has cores;
each jaxvision repeat is followed by the same torch repeat. Reports the median of
``--repeats`` after one warm-up (compilation) call.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision import interpret
from jaxvision.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D
from jaxvision.models import Sequential

FILTERS = (32, 64, 128, 128)
BATCH, SIZE, CLASSES, STEPS, SAMPLES, CHUNK, NOISE = 8, 64, 10, 50, 50, 32, 0.15


def benchmark_model(seed: int = 0) -> tuple[Sequential, dict]:
    rng = np.random.default_rng(seed)
    layers, weights, channels = [], {}, 3
    for i, filters in enumerate(FILTERS):
        conv = Conv2D(channels, filters, 3, padding="same", activation="relu", rngs=nnx.Rngs(i))
        kernel = (rng.standard_normal((3, 3, channels, filters)) * np.sqrt(2 / (9 * channels))).astype(np.float32)
        bias = (0.01 * rng.standard_normal(filters)).astype(np.float32)
        conv.kernel[...], conv.bias[...] = jnp.asarray(kernel), jnp.asarray(bias)
        weights[f"conv{i}_kernel"], weights[f"conv{i}_bias"] = kernel, bias
        layers += [conv] + ([MaxPooling2D(2)] if i < len(FILTERS) - 1 else [])
        channels = filters
    dense = Dense(channels, CLASSES, rngs=nnx.Rngs(9))
    weights["dense_kernel"] = (rng.standard_normal((channels, CLASSES)) / np.sqrt(channels)).astype(np.float32)
    weights["dense_bias"] = np.zeros(CLASSES, np.float32)
    dense.kernel[...], dense.bias[...] = jnp.asarray(weights["dense_kernel"]), jnp.asarray(weights["dense_bias"])
    return Sequential([*layers, GlobalAveragePooling2D(), dense]), weights


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", required=True, help="python of the reference environment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="methods to time (default: all three)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="jaxvision's path points / noisy copies per batch (default: all, as Captum)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "bench_attribution.json")
    args = parser.parse_args()

    model, weights = benchmark_model()
    images = np.random.default_rng(1).uniform(0, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    images[:, 0, 0, :2] = 0.0, 1.0  # every image spans [0, 1]: σ = NOISE per image = Captum's absolute stdev
    classes = np.arange(BATCH) % CLASSES
    sigma = NOISE
    layer = model.layer_names[-3]  # the last conv
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.npz"
        np.savez(path, **weights, images=images, classes=classes, sigma=sigma, ig_steps=STEPS, samples=SAMPLES,
                 chunk=CHUNK)
        worker = subprocess.Popen([args.torch_python, str(Path(__file__).with_name("attribution_torch_worker.py")),
                                   str(path), str(os.cpu_count())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        torch_info = json.loads(worker.stdout.readline())

    def torch_time(command: str) -> float:
        worker.stdin.write(command + "\n")
        worker.stdin.flush()
        return float(worker.stdout.readline())

    cases = {
        "score_cam": lambda: interpret.score_cam(model, images, layer, classes, chunk=CHUNK),
        "integrated_gradients": lambda: interpret.integrated_gradients(model, images, classes, steps=STEPS,
                                                                       chunk=args.chunk or STEPS),
        "smooth_grad": lambda: interpret.smooth_grad(model, images, classes, samples=SAMPLES,
                                                     noise_level=NOISE, chunk=args.chunk or SAMPLES),
    }
    results = {}
    for name, run_jax in cases.items():
        if args.only and name not in args.only:
            continue
        compile_seconds = timed(run_jax)
        torch_time(name)  # warm-up
        jax_times, torch_times = [], []
        for _ in range(args.repeats):
            jax_times.append(timed(run_jax))
            torch_times.append(torch_time(name))
        results[name] = {"jaxvision_s": statistics.median(jax_times), "reference_s": statistics.median(torch_times),
                         "jaxvision_runs": jax_times, "reference_runs": torch_times,
                         "jaxvision_first_call_s": compile_seconds,
                         "speedup": statistics.median(torch_times) / statistics.median(jax_times)}
        print(f"{name}: jaxvision {results[name]['jaxvision_s']:.3f} s, reference {results[name]['reference_s']:.3f} s "
              f"({results[name]['speedup']:.2f}×); runs {np.round(jax_times, 3).tolist()} / "
              f"{np.round(torch_times, 3).tolist()}", flush=True)
    worker.stdin.close()
    worker.wait()
    report = {"results": results, "reference": torch_info, "jax": jax.__version__, "devices": str(jax.devices()),
              "machine": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "batch": BATCH, "image_size": SIZE, "chunk": args.chunk, "filters": FILTERS, "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average {os.getloadavg()}; wrote {args.out}")


if __name__ == "__main__":
    main()
