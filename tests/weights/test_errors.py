"""Wrong, truncated, foreign and incomplete weight files: named errors, model left untouched."""

import json
import shutil

import h5py
import numpy as np
import pytest

from jaxvision.applications.pretrained import build
from jaxvision.data.download import data_root
from jaxvision.weights import load_keras_weights, save_keras_weights

H5 = data_root() / "pretrained" / "mobilenet_2_5_224_tf_no_top.h5"


def skeleton(**kwargs):
    return build("mobilenet", "file", **kwargs)  # zero weights, no initialiser compilation


def test_wrong_architecture_names_the_layer_and_both_shapes():
    model = skeleton(alpha=0.5, include_top=False)
    with pytest.raises(ValueError, match=r"shape mismatch for layer 'conv1' \(Conv2D\) variable 'kernel': "
                                         r"the model has \(3, 3, 3, 16\), the file's layer 'conv1' has \(3, 3, 3, 8\)"):
        load_keras_weights(model, H5)
    assert not np.any(model.conv1_bn.gamma[...])  # nothing was written


def test_layer_count_mismatch_by_order_and_missing_layers_by_name():
    model = skeleton(alpha=0.25, include_top=True)
    with pytest.raises(ValueError, match=r"has 54 layers with weights but MobileNetV1 has 55"):
        load_keras_weights(model, H5)
    with pytest.raises(ValueError, match=r"missing from the file: \[conv_preds\]; in the file but not in the model: \[\]"):
        load_keras_weights(model, H5, by_name=True)
    result = load_keras_weights(model, H5, by_name=True, strict=False)
    assert result.missing == ("conv_preds",) and len(result.loaded) == 54
    with h5py.File(H5) as f:
        np.testing.assert_array_equal(model.conv_dw_1.kernel[...], f["conv_dw_1/conv_dw_1/depthwise_kernel:0"])


def test_truncated_and_foreign_files(tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(H5.read_bytes()[:1_000_000])
    model = skeleton(alpha=0.25, include_top=False)
    with pytest.raises(ValueError, match=r"truncated\.h5 is not a readable HDF5 weights file \(truncated or not HDF5\)"):
        load_keras_weights(model, truncated)
    text = tmp_path / "notes.weights.h5"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="notes.weights.h5 is not a readable HDF5"):
        load_keras_weights(model, text)
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"foreign\.h5: an HDF5 file without 'layer_names'.*\['data'\]"):
        load_keras_weights(model, tmp_path / "foreign.h5")
    (tmp_path / "other.json").write_text(json.dumps({"format": "graph-model"}))
    with pytest.raises(ValueError, match=r"other\.json: no weightsManifest"):
        load_keras_weights(model, tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="missing.h5 does not exist"):
        load_keras_weights(model, tmp_path / "missing.h5")


def test_damaged_legacy_file_names_the_missing_layer(tmp_path):
    damaged = tmp_path / "damaged.h5"
    shutil.copy(H5, damaged)
    with h5py.File(damaged, "r+") as f:
        del f["conv_pw_7_bn"]
    with pytest.raises(ValueError, match=r"layer 'conv_pw_7_bn' is listed in layer_names but has no group"):
        load_keras_weights(skeleton(alpha=0.25, include_top=False), damaged)


def test_truncated_tfjs_shard(tmp_path):
    source = data_root() / "pretrained" / "mobilenet_v1_0.75_224_tfjs"
    shutil.copytree(source, tmp_path / "tfjs")
    shard = tmp_path / "tfjs" / "group1-shard1of1"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"shards \['group1-shard1of1'\] hold 2588 bytes, too few for weight 'conv1/kernel'"):
        load_keras_weights(skeleton(alpha=0.75), tmp_path / "tfjs")
    (tmp_path / "tfjs" / "group2-shard1of1").unlink()
    shard.write_bytes(shard.read_bytes() + b"\0\0\0\0")
    with pytest.raises(FileNotFoundError, match=r"weight shard .*group2-shard1of1 is missing"):
        load_keras_weights(skeleton(alpha=0.75), tmp_path / "tfjs" / "model.json")


def test_save_requires_the_keras_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.weights\.h5"):
        save_keras_weights(skeleton(alpha=0.25, include_top=False), tmp_path / "x.h5")
