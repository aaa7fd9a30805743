"""Fuzz of the untrusted-file readers (``fuzz_untrusted_run.py``) in a subprocess with a 3 GB
address-space ceiling and a time limit, every case a load or a named error: per CI run,
500 derandomized cases for each of the TF.js manifest, HDF5 and ``.pth`` readers and 40 for
each of checkpoints, exported folders, weight manifests and the SAM loader (1,660 in all).
The subprocess prints how many cases each reader ran; the counts are checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = 500
SURFACE_EXAMPLES = 40


def test_readers_survive_generated_files_within_a_memory_ceiling(tmp_path):
    out = tmp_path / "counts.json"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("fuzz_untrusted_run.py")), str(out)],
                          env={**os.environ, "FUZZ_EXAMPLES": str(EXAMPLES), "FUZZ_SURFACE_EXAMPLES": str(SURFACE_EXAMPLES)},
                          capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout.strip().splitlines()[-1])  # the case count of this run (pytest -s shows it)
    assert json.loads(out.read_text()) == {"tfjs": EXAMPLES, "hdf5": EXAMPLES, "pth": EXAMPLES,
                                           "checkpoint": SURFACE_EXAMPLES, "exported": SURFACE_EXAMPLES,
                                           "manifest": SURFACE_EXAMPLES, "sam": SURFACE_EXAMPLES}
