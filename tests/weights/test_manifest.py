"""Self-checking weights: the manifests of the shared MobileNet files (written by
``make_manifests.py``) accept the real files and name a swapped file, a corrupted file, a
tensor that was not loaded and a model that computes something else."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxvision.applications import MobileNet
from jaxvision.data import data_root
from jaxvision.weights import check_manifest, load_keras_weights

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NO_TOP = "mobilenet_2_5_224_tf_no_top.h5"
TFJS = "mobilenet_v1_0.75_224_tfjs"


def pretrained(name: str) -> Path:
    path = data_root() / "pretrained" / name
    if not path.exists():
        pytest.skip(f"{path} is not in the shared data")
    return path


@pytest.fixture(scope="module")
def small():
    return MobileNet(alpha=0.25, include_top=False, weights=str(pretrained(NO_TOP)),
                     manifest=FIXTURES / f"{NO_TOP}.manifest.json")


def test_the_real_files_match_their_manifests(small):
    assert small.conv1.kernel.shape == (3, 3, 3, 8)  # loaded, checked silently
    model = MobileNet(alpha=0.75, weights=str(pretrained(TFJS)), manifest=FIXTURES / f"{TFJS}.manifest.json")
    assert model.conv_preds.kernel.shape == (1, 1, 768, 1000)


def test_a_swapped_or_corrupted_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="is not the manifest's .* a swapped or corrupted file"):
        MobileNet(alpha=0.75, weights=str(pretrained(TFJS)), manifest=FIXTURES / f"{NO_TOP}.manifest.json")
    copy = tmp_path / NO_TOP
    shutil.copy(pretrained(NO_TOP), copy)
    blob = bytearray(copy.read_bytes())
    blob[-5000] ^= 1  # inside the last layer's arrays: still a readable file, one weight changed
    copy.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=f"{NO_TOP}: sha256 .* swapped or corrupted"):
        MobileNet(alpha=0.25, include_top=False, weights=str(copy), manifest=FIXTURES / f"{NO_TOP}.manifest.json")


def test_a_tensor_left_unloaded_is_named(small):
    model = MobileNet(alpha=0.25, include_top=False, weights=str(pretrained(NO_TOP)))
    model.conv_dw_3_bn.moving_variance[...] = np.ones(32, np.float32)  # as if never loaded
    with pytest.raises(ValueError, match="tensor conv_dw_3_bn/moving_variance does not hold the manifest's values"):
        check_manifest(model, pretrained(NO_TOP), FIXTURES / f"{NO_TOP}.manifest.json")


def test_a_model_that_computes_something_else_names_the_first_diverging_layer():
    model = MobileNet(alpha=0.25, include_top=False)
    model.conv_dw_5_bn.epsilon = 0.1  # Keras's is 1e-3: every tensor loads the same, the numbers differ
    with pytest.raises(ValueError, match="golden output differs .* first diverging layer: conv_dw_5_bn "):
        load_keras_weights(model, pretrained(NO_TOP), manifest=FIXTURES / f"{NO_TOP}.manifest.json")
