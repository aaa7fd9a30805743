"""Models that nest a model (the book's end-to-end model after listing 8.29: a backbone inside the classifier) exchange Keras 3
``.weights.h5`` files with the equivalent Keras model, both ways, and are explained by path."""

import h5py
import numpy as np
import pytest
from flax import nnx

from jaxvision.applications import MobileNet, Xception
from jaxvision.interpret import grad_cam
from jaxvision.layers import Dense, Dropout, GlobalAveragePooling2D
from jaxvision.models import Sequential
from jaxvision.weights import load_keras_weights, save_keras_weights

SIZES = {"mobilenet": 32, "xception": 71}  # Keras's smallest inputs for each


def backbone(arch: str, seed: int):
    return MobileNet(alpha=0.25, include_top=False, seed=seed) if arch == "mobilenet" else \
        Xception(include_top=False, seed=seed)


def finetune_model(arch: str, seed: int) -> Sequential:
    base = backbone(arch, seed)
    channels = 256 if arch == "mobilenet" else 2048
    return Sequential([("backbone", base), GlobalAveragePooling2D(), Dropout(0.5, rngs=nnx.Rngs(seed)),
                       Dense(channels, 1, activation="sigmoid", rngs=nnx.Rngs(seed))])


def keras_finetune_model(keras, arch: str):
    size = SIZES[arch]
    base = (keras.applications.MobileNet(input_shape=(size, size, 3), alpha=0.25, include_top=False, weights=None)
            if arch == "mobilenet" else
            keras.applications.Xception(input_shape=(size, size, 3), include_top=False, weights=None))
    return keras.Sequential([keras.Input((size, size, 3)), base, keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dropout(0.5), keras.layers.Dense(1, activation="sigmoid")])


def datasets(path) -> dict[str, np.ndarray]:
    """Every array in a ``.weights.h5`` by its path (``layers/functional/layers/conv2d/vars/0``)."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def assert_same_weights(ours_path, keras_path) -> None:
    ours, theirs = datasets(ours_path), datasets(keras_path)
    assert sorted(ours) == sorted(theirs) and len(ours) > 100
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.parametrize("arch", ["mobilenet", "xception"])
def test_nested_model_weights_round_trip_with_keras(keras, arch, tmp_path):
    size = SIZES[arch]
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    twin = keras_finetune_model(keras, arch)
    twin.save_weights(tmp_path / "keras.weights.h5")  # layers/functional/layers/conv2d/vars/0 ...
    ours = finetune_model(arch, seed=1)
    result = load_keras_weights(ours, tmp_path / "keras.weights.h5")
    assert not result.missing and not result.unexpected
    save_keras_weights(ours, tmp_path / "ours.weights.h5")
    assert_same_weights(tmp_path / "ours.weights.h5", tmp_path / "keras.weights.h5")  # every array, every key
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(twin(x)), rtol=1e-5, atol=1e-6)

    other = finetune_model(arch, seed=2)  # different weights, written by jaxvision, read by Keras
    save_keras_weights(other, tmp_path / "other.weights.h5")
    twin.load_weights(tmp_path / "other.weights.h5")
    twin.save_weights(tmp_path / "keras_again.weights.h5")
    assert_same_weights(tmp_path / "other.weights.h5", tmp_path / "keras_again.weights.h5")
    assert not np.array_equal(twin.layers[-1].kernel.value, ours.dense.kernel[...])  # a real exchange


def test_grad_cam_on_a_backbone_layer_of_the_finetuning_model():
    model = finetune_model("mobilenet", seed=0)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    heatmaps = grad_cam(model, x, "backbone/conv_pw_12_relu")
    assert heatmaps.shape == (2, 4, 4) and float(heatmaps.max()) == 1.0
