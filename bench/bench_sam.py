"""Segment Anything vit_b on this machine: jaxvision (jitted) against Meta's torch reference,
interleaved in the same run.

    .venv/bin/python bench/bench_sam.py --torch-python /work/sam_ref_venv/bin/python [--repeats 3]

Random weights (no checkpoint needed). Times the image encoder on one 1024² image, and the
prompt encoder + mask decoder for N one-point prompts as one batched call (multimask). The
torch side runs in ``bench/sam_torch_worker.py`` under the reference environment's Python
(torch CPU + segment-anything, made as in tests/models/segment_anything/make_fixture.py),
with as many threads as this machine has cores; each jaxvision repeat is followed by the
same torch repeat. Reports the median of ``--repeats`` after one warm-up (compilation) call.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.segment_anything import CONFIGS, Sam, sam_from_state_dict
from jaxvision.models.segment_anything.checkpoint import reference_shapes

PROMPTS = (1, 16, 64)


def random_vit_b(seed: int = 0) -> Sam:
    rng = np.random.default_rng(seed)
    tensors = {key: (0.02 * rng.standard_normal(shape, dtype=np.float32))
               for key, shape in reference_shapes(CONFIGS["vit_b"]).items()}
    return sam_from_state_dict(tensors, CONFIGS["vit_b"])


def timed(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", required=True, help="python of the reference environment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs") / "bench_sam.json")
    args = parser.parse_args()

    worker = subprocess.Popen([args.torch_python, str(Path(__file__).with_name("sam_torch_worker.py")),
                               str(os.cpu_count())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def torch_time(command: str) -> float:
        worker.stdin.write(command + "\n")
        worker.stdin.flush()
        return float(worker.stdout.readline())

    torch_info = json.loads(worker.stdout.readline())
    sam = random_vit_b()
    embed = nnx.jit(lambda sam, x: sam.embed(x))
    decode = nnx.jit(lambda sam, emb, points, labels: sam.decode(emb, points, labels, multimask_output=True))
    image = jax.random.normal(jax.random.key(0), (1, 1024, 1024, 3))
    embedding = jax.random.normal(jax.random.key(1), (1, 64, 64, 256))
    prompts = {n: (jax.random.uniform(jax.random.key(n), (n, 1, 2)) * 1024, jnp.ones((n, 1), jnp.int32))
               for n in PROMPTS}

    results: dict[str, dict] = {}
    cases = [("image encoder 1024²", lambda: timed(embed, sam, image), "encoder")]
    cases += [(f"decoder, {n} prompts in one call", lambda n=n: timed(decode, sam, embedding, *prompts[n]),
               f"decoder {n}") for n in PROMPTS]
    for name, run_jax, command in cases:
        compile_seconds = run_jax()
        torch_time(command)  # warm-up
        jax_times, torch_times = [], []
        for _ in range(args.repeats):
            jax_times.append(run_jax())
            torch_times.append(torch_time(command))
        results[name] = {"jaxvision_s": statistics.median(jax_times), "torch_s": statistics.median(torch_times),
                         "jaxvision_first_call_s": compile_seconds, "jaxvision_all": jax_times,
                         "torch_all": torch_times}
        r = results[name]
        print(f"{name:>34}: jaxvision {r['jaxvision_s'] * 1e3:9.1f} ms   torch {r['torch_s'] * 1e3:9.1f} ms   "
              f"ratio {r['torch_s'] / r['jaxvision_s']:.2f}× (first jax call {compile_seconds:.1f} s)", flush=True)
    worker.stdin.close()
    worker.wait()
    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "jax": jax.__version__,
              "backend": jax.default_backend(), "repeats": args.repeats, **torch_info, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
