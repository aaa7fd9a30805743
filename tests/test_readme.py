"""The guides' titled code blocks run as written: the "Write your own model" guide
(docs/guides/own-model.md), its three files, the last one in a new process; the fine-tuning
guide's EfficientNetB0 script (docs/guides/fine-tuning.md) on a Keras-format weights file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "own-model.md"


def readme_files(guide: Path = GUIDE) -> dict[str, str]:
    """The guide's ```` ```python title="<file name>" ```` blocks (Material's titled code blocks)."""
    return dict(re.findall(r'```python title="(\S+\.py)"\n(.*?)```', guide.read_text(), flags=re.S))


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


def test_fine_tuning_guide_runs_efficientnet_from_a_keras_weights_file(tmp_path):
    """The script as written, on 2 + 2 images per split and a ``.weights.h5`` jaxvision writes in
    Keras 3's layout (zero weights: the run, the freezing and the counts are what is checked)."""
    import json

    from PIL import Image

    from jaxvision.applications.pretrained import build
    from jaxvision.layers import count_params
    from jaxvision.weights import keras_layers, save_keras_weights

    (script,) = readme_files(ROOT / "docs" / "guides" / "fine-tuning.md").items()
    assert script[0] == "finetune_efficientnet.py"
    (tmp_path / script[0]).write_text(script[1])
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for label, level in (("cat", 40), ("dog", 200)):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(2):
                pixels = np.clip(level + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / "data" / split / label / f"{label}.{i}.jpg")
    backbone = build("efficientnet_b0", "zeros", include_top=False)  # zero weights, nothing compiled
    save_keras_weights(backbone, tmp_path / "b0.weights.h5")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    run = subprocess.run([sys.executable, script[0], "data", "b0.weights.h5"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    head = 1280 * 256 + 256 + 256 + 1
    keras = json.loads((ROOT / "tests" / "applications" / "fixtures" / "keras_params_modern.json").read_text())
    batchnorms = [layer for layer in keras_layers(backbone).values() if type(layer).__name__ == "BatchNormalization"]
    no_top = keras["EfficientNetB0"]["trainable"] - (1280 * 1000 + 1000)  # Keras's count less its classifier
    assert count_params(backbone)[0] == no_top and len(batchnorms) == 49
    gamma_beta = sum(2 * int(np.prod(layer.gamma.shape)) for layer in batchnorms)
    assert f"trainable, frozen backbone: {head}\n" in run.stdout
    assert f"trainable, fine-tuning: {head + no_top - gamma_beta}\n" in run.stdout
    accuracy = float(run.stdout.rsplit("test accuracy:", 1)[1])
    assert accuracy in (0.0, 0.25, 0.5, 0.75, 1.0)  # 4 test images
