#!/usr/bin/env bash
# The book profile on one GPU, with every log kept (issue 11 item 8).
#
# Run from the repository root, in the venv, once the CUDA build of jax is installed:
#     pip install -U "jax[cuda12]==$(python -c 'import jax; print(jax.__version__)')"
#     bash bench/book_profile_gpu.sh [OUT]            # default OUT: runs/book_gpu
# Writes OUT/log.txt (device, per-experiment progress, wall times), OUT/summary.md and .json
# (accuracy per experiment), the runs' metrics.json and figures, and OUT/bench_training.json
# (images/s against Keras 3 on the same GPU); the log prints each experiment's estimated time
# (bench/port_check.py) beside its measured one. A second run reuses OUT/xla_cache.
set -euo pipefail
out=${1:-runs/book_gpu}
mkdir -p "$out"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python -c "import jax; print(jax.__version__, jax.devices())"
  start=$(date +%s)
  python experiments/run_all.py --profile book --out "$out" --compile-cache "$out/xla_cache" "${@:2}"
  echo "run_all wall time: $(( $(date +%s) - start )) s"
  # The roofline estimates (bench/port_check.py) beside what was measured, per experiment.
  python bench/port_check.py --estimates-only --measured "$out/summary.json"
  python bench/bench_training.py --out "$out/bench_training.json"
} 2>&1 | tee "$out/log.txt"
