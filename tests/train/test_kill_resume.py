"""SIGKILL a training process at random points, including inside checkpoint writes, restart
it each time, and check that it ends with weights bit-identical to an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jaxvision.train import fit
from train_helpers import blobs, dropout_bn_net, train_kwargs, weights

EPOCHS = 12
WORKER = Path(__file__).with_name("kill_worker.py")
TMP_MARK = "orbax-checkpoint-tmp"


def checkpoint_folders(out: Path) -> dict[Path, int]:
    """Every step folder, finished or not (``N.orbax-checkpoint-tmp``), with its inode."""
    found = {}
    for folder in (out / "backup", out / "checkpoint"):
        for entry in folder.iterdir() if folder.is_dir() else ():
            try:
                found[entry] = entry.stat().st_ino
            except FileNotFoundError:  # renamed or deleted meanwhile
                continue
    return found


def written_by_this_life(out: Path, earlier: dict[Path, int], *, temporary: bool) -> bool:
    """Whether this life of the worker has created a step folder (an unfinished one if
    ``temporary``). Names repeat across lives (a resumed run writes step N again) and the
    restart deletes the unfinished folder a kill left, so a folder counts only if its
    (name, inode) was not there before this life began."""
    return any((TMP_MARK in path.name or not temporary) and earlier.get(path) != inode
               for path, inode in checkpoint_folders(out).items())


REPO = Path(__file__).parents[2]


def start(out: Path, log: Path) -> subprocess.Popen:
    # The repository first (this checkout's jaxvision), and a compilation cache shared by
    # the lives of the worker, so only the first one compiles.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(WORKER.parent)]),
               JAX_COMPILATION_CACHE_DIR=str(out.parent / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    with open(log, "ab") as stderr:
        return subprocess.Popen([sys.executable, str(WORKER), str(out), str(EPOCHS)], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def kill_when(process: subprocess.Popen, ready, delay: float, timeout: float = 120.0) -> bool:
    """SIGKILL ``process`` ``delay`` seconds after ``ready()`` holds; False if it exited first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.0005)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def test_sigkilled_training_resumes_bit_identically(tmp_path):
    reference = dropout_bn_net()
    fit(reference, blobs(100), **train_kwargs(epochs=EPOCHS))
    rng = random.Random(0)
    out, log, kills, inside_writes = tmp_path / "run", tmp_path / "worker.log", 0, 0
    out.mkdir()
    # A kill at a random moment after the worker's first write of its life, then kills as
    # soon as a checkpoint write is seen in progress (plus 0–2 ms).
    for plan in ("random", "write", "write"):
        earlier = checkpoint_folders(out)
        process = start(out, log)
        if plan == "random":
            killed = kill_when(process, lambda: written_by_this_life(out, earlier, temporary=False), rng.uniform(0.0, 0.4))
        else:
            killed = kill_when(process, lambda: written_by_this_life(out, earlier, temporary=True), rng.uniform(0.0, 0.002))
        assert killed, f"the worker ended before kill {kills + 1}: {log.read_text()[-2000:]}"
        kills += 1
        # An unfinished checkpoint of this life left behind: the kill landed inside a write.
        inside_writes += written_by_this_life(out, earlier, temporary=True)
    process = start(out, log)
    assert process.wait(timeout=300) == 0, log.read_text()[-2000:]
    print(f"{kills} kills, {inside_writes} inside a checkpoint write")
    assert inside_writes >= 2
    final = np.load(out / "final.npz")
    expected = weights(reference)
    assert sorted(final.files) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(final[name], value, err_msg=name)
    assert not (out / "backup").exists()
