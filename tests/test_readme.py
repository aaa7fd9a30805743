"""The "Write your own model" guide (docs/guides/own-model.md) runs as written: its three
files, the last one in a new process."""

import os
import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "own-model.md"


def readme_files() -> dict[str, str]:
    """The guide's ```` ```python title="<file name>" ```` blocks (Material's titled code blocks)."""
    return dict(re.findall(r'```python title="(\S+\.py)"\n(.*?)```', GUIDE.read_text(), flags=re.S))


def test_write_your_own_model_example_runs(tmp_path):
    files = readme_files()
    assert sorted(files) == ["load.py", "mymodels.py", "train.py"]
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    trained = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
    assert trained.returncode == 0, trained.stderr
    assert "add (Add)" in trained.stdout and "Total params: 849" in trained.stdout
    loaded = subprocess.run([sys.executable, "load.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert loaded.returncode == 0, loaded.stderr
