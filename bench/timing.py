"""Timing helper shared by the micro-benchmarks (run them from the repository root)."""

import time

import jax


def best_time(fn, *args, repeats: int) -> float:
    """Milliseconds of the fastest of ``repeats`` calls, after one compiling warm-up call."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best * 1e3
