"""Fuzz of the TF.js manifest, HDF5 and ``.pth`` readers (``fuzz_untrusted_run.py``) in a
subprocess with a 3 GB address-space ceiling and a time limit: 500 derandomized cases per
reader per CI run (1,500 in all), every one a load or a named error."""

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = 500


def test_readers_survive_generated_files_within_a_memory_ceiling(tmp_path):
    out = tmp_path / "counts.json"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("fuzz_untrusted_run.py")), str(out)],
                          env={**os.environ, "FUZZ_EXAMPLES": str(EXAMPLES)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(out.read_text()) == {"tfjs": EXAMPLES, "hdf5": EXAMPLES, "pth": EXAMPLES}
