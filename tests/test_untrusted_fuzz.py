"""Fuzz of the untrusted-file readers (``fuzz_untrusted_run.py``) in a subprocess with a 3 GB
address-space ceiling and a time limit, every case a load or a named error: per CI run,
derandomized cases for the TF.js manifest, HDF5 and ``.pth`` readers, checkpoints, exported
folders, weight manifests and the SAM loader (``EXAMPLES``, 1,025 in all). The subprocess
prints how many cases each reader ran and in how many seconds; the counts are checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

# Cases per reader: a checkpoint case (copy, orbax restore, rebuild) costs ~50 file cases.
EXAMPLES = {"tfjs": 200, "hdf5": 200, "pth": 500, "checkpoint": 10, "exported": 50, "manifest": 50, "sam": 15}


def test_readers_survive_generated_files_within_a_memory_ceiling(tmp_path):
    out = tmp_path / "counts.json"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("fuzz_untrusted_run.py")), str(out)],
                          env={**os.environ, "FUZZ_EXAMPLES": json.dumps(EXAMPLES)}, capture_output=True, text=True,
                          timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout.strip().splitlines()[-1])  # this run's case count per reader (shown with pytest -s)
    assert json.loads(out.read_text()) == EXAMPLES
