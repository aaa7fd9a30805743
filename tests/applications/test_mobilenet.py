"""MobileNet v1: Keras's parameter counts and layer names, the real ImageNet weights, decoding."""

import urllib.error

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.applications import MobileNet, decode_predictions, mobilenet, preprocess_input
from jaxvision.data.download import data_root
from jaxvision.models import rebuild_model, summary

# Keras 3.15.1, keras.applications.MobileNet(alpha=0.75) with the TF.js weights assigned by
# name, on elephant.jpg resized to 224 by Pillow's bilinear filter (keras.utils.load_img), x/127.5-1.
KERAS_ELEPHANT = [("n02504458", "African_elephant", 0.6088909), ("n02504013", "Indian_elephant", 0.2602271),
                  ("n01871265", "tusker", 0.13029106)]


def count(model) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))


@pytest.mark.parametrize("alpha, include_top, total", [(0.25, False, 218_544), (0.25, True, 475_544),
                                                       (0.75, True, 2_601_976)])
def test_parameter_counts_equal_keras(alpha, include_top, total):
    model = nnx.eval_shape(lambda: mobilenet(alpha=alpha, include_top=include_top))
    assert count(model) == total


def load_photo(name: str, size: int = 224) -> np.ndarray:
    with Image.open(data_root() / "images" / name) as img:
        return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), np.float32)[None]


@pytest.fixture(scope="module")
def imagenet_mobilenet():
    model = MobileNet(alpha=0.75, weights="imagenet")  # offline: the shared TF.js copy
    model.eval()
    return model


def test_elephant_probabilities_equal_keras(imagenet_mobilenet):
    probs = np.asarray(imagenet_mobilenet(jnp.asarray(preprocess_input(load_photo("elephant.jpg")))))
    top3 = decode_predictions(probs, top=3)[0]
    assert [t[:2] for t in top3] == [k[:2] for k in KERAS_ELEPHANT]
    np.testing.assert_allclose([t[2] for t in top3], [k[2] for k in KERAS_ELEPHANT], atol=1e-4)
    assert [round(float(t[2]), 3) for t in top3] == [0.609, 0.26, 0.13]
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_no_top_loads_the_real_h5_file_by_order():
    model = MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    with h5py.File(data_root() / "pretrained" / "mobilenet_2_5_224_tf_no_top.h5") as f:
        np.testing.assert_array_equal(model.conv_dw_3.kernel[...], f["conv_dw_3/conv_dw_3/depthwise_kernel:0"])
        np.testing.assert_array_equal(model.conv_pw_13_bn.moving_variance[...],
                                      f["conv_pw_13_bn/conv_pw_13_bn/moving_variance:0"])
    assert model.layer_shapes((1, 224, 224, 3))["conv_pw_13_relu"] == (1, 7, 7, 256)


def test_no_top_imagenet_takes_the_backbone_of_the_tfjs_copy(imagenet_mobilenet):
    model = MobileNet(alpha=0.75, include_top=False, pooling="avg", weights="imagenet", input_shape=(224, 224, 3))
    assert "conv_preds" not in model.layer_names
    np.testing.assert_array_equal(model.conv_pw_13.kernel[...], imagenet_mobilenet.conv_pw_13.kernel[...])
    assert model.layer_shapes((2, 180, 180, 3))["global_average_pooling2d"] == (2, 768)


@pytest.mark.parametrize("size, conv1, pad", [(33, 17, 18), (32, 16, 17)])
def test_odd_and_even_sizes_pad_bottom_right_like_keras(size, conv1, pad):
    shapes = nnx.eval_shape(lambda: mobilenet(alpha=0.25, include_top=False)).layer_shapes((1, size, size, 3))
    assert shapes["conv1"] == (1, conv1, conv1, 8)
    assert shapes["conv_pad_2"] == (1, pad, pad, 16)
    # Padding (0, 1) then "valid": 17 -> 8, where "same" would give 9.
    assert shapes["conv_dw_2"] == (1, 8, 8, 16)
    assert shapes["conv_pw_13_relu"] == (1, 1, 1, 256)


def test_top_layers_summary_and_checkpoint_rebuild():
    model = nnx.eval_shape(lambda: MobileNet(alpha=0.25, classes=10, dropout=0.2, seed=3))  # shapes only
    assert model.layer_names[-5:] == ("global_average_pooling2d", "dropout", "conv_preds", "reshape_2", "predictions")
    assert model.dropout.rate == 0.2
    twin = nnx.eval_shape(lambda: rebuild_model(model.build_config))  # what load_model does
    assert jax.tree.map(lambda v: v.shape, nnx.state(twin)) == jax.tree.map(lambda v: v.shape, nnx.state(model))
    text = summary(model, (1, 40, 40, 3), print_fn=lambda s: None)
    assert "Total params: 221,114" in text and "Non-trainable params: 5,472" in text
    assert "conv_pad_12" in text and "(None, 1, 1, 256)" in text


def test_imagenet_argument_errors():
    with pytest.raises(ValueError, match="alpha in"):
        MobileNet(alpha=0.3, weights="imagenet")
    with pytest.raises(ValueError, match="classes=1000"):
        MobileNet(alpha=0.25, classes=10, weights="imagenet")
    with pytest.raises(FileNotFoundError, match="no_such.h5"):
        MobileNet(alpha=0.25, weights="no_such.h5")


def test_offline_without_the_file_names_it_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match=r"mobilenet_5_0_224_tf_no_top\.h5.*Put .* into " + str(tmp_path)):
        MobileNet(alpha=0.5, include_top=False, weights="imagenet")


def test_decode_predictions_checks_its_input():
    with pytest.raises(ValueError, match=r"\(samples, 1000\); got shape \(2, 10\)"):
        decode_predictions(np.zeros((2, 10)))
    preds = np.zeros((2, 1000), np.float32)
    preds[1, [3, 5]] = 0.2, 0.7
    out = decode_predictions(preds, top=2)
    assert [(w, s) for w, _, s in out[1]] == [("n01496331", np.float32(0.7)), ("n01491361", np.float32(0.2))]


def test_class_index_offline_and_tampered(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    preds = np.full((1, 1000), 1e-3, np.float32)
    with pytest.raises(RuntimeError, match=r"(?s)could not download imagenet_class_index\.json.*" + str(tmp_path)):
        decode_predictions(preds)
    (tmp_path / "pretrained" / "imagenet_class_index.json").write_text('{"0": ["n0", "x"]}')
    with pytest.raises(ValueError, match=r"md5 .* is not Keras's c2c37ea517e94d9795004a39431a14cb"):
        decode_predictions(preds)
