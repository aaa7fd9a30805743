"""MobileNet through every import path: Keras writes the file, jaxvision reads it, outputs
equal keras.applications to 1e-5 (with and without top, odd and even sizes); and export."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.applications import MobileNet
from jaxvision.applications.pretrained import build
from jaxvision.weights import keras_layers, load_keras_weights, save_keras_weights
from jaxvision.weights.model_layers import layer_variables
from keras_files import fill_uniform, randomise, write_full_model_h5, write_legacy_h5, write_tfjs

WRITERS = {
    "legacy.h5": lambda keras, model, tmp: write_legacy_h5(keras, model, tmp / "legacy.h5") or tmp / "legacy.h5",
    "full_model.h5": lambda keras, model, tmp: write_full_model_h5(keras, model, tmp / "full.h5") or tmp / "full.h5",
    "weights.h5": lambda keras, model, tmp: model.save_weights(tmp / "m.weights.h5") or tmp / "m.weights.h5",
    "tfjs": lambda keras, model, tmp: write_tfjs(model, tmp / "tfjs") or tmp / "tfjs",
}
# alpha, input size (odd and even), import paths; alpha 0.25 goes through all of them.
CASES = [(0.25, 33, tuple(WRITERS)), (0.5, 32, ("weights.h5",)), (0.75, 35, ("tfjs",)), (1.0, 34, ("full_model.h5",))]


@pytest.mark.parametrize("alpha, size, paths", CASES, ids=[f"alpha{a}-{s}px" for a, s, _ in CASES])
def test_mobilenet_equals_keras_through_each_import_path(keras, tmp_path, alpha, size, paths):
    twin = keras.applications.MobileNet(alpha=alpha, weights=None, input_shape=(size, size, 3))
    randomise(twin, seed=int(alpha * 100))
    both = keras.Model(twin.input, [twin.get_layer("conv_pw_13_relu").output, twin.output])  # one compile
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    expected_features, expected_top = both.predict(x, verbose=0)
    for path in paths:
        file = WRITERS[path](keras, twin, tmp_path)
        top = MobileNet(alpha=alpha, weights=file)  # weights= path, Keras's way
        no_top = build("mobilenet", file, alpha=alpha, include_top=False)  # zero weights, then
        result = load_keras_weights(no_top, file, by_name=True, strict=False)
        assert not result.missing and len(result.unexpected) == 1 and "conv_preds" in result.unexpected[0]
        top.eval(), no_top.eval()
        np.testing.assert_allclose(np.asarray(top(jnp.asarray(x))), expected_top, atol=1e-5, err_msg=path)
        np.testing.assert_allclose(np.asarray(no_top(jnp.asarray(x))), expected_features, atol=1e-5, err_msg=path)


def test_export_loads_into_keras_exactly(keras, tmp_path):
    ours = build("mobilenet", "random", alpha=0.25)
    fill_uniform(ours, seed=4)
    save_keras_weights(ours, tmp_path / "ours.weights.h5")
    twin = keras.applications.MobileNet(alpha=0.25, weights=None, input_shape=(32, 32, 3))
    twin.load_weights(tmp_path / "ours.weights.h5")
    theirs = [layer for layer in twin.layers if layer.weights]
    assert [layer.name for layer in theirs] == list(keras_layers(ours))
    for layer, mine in zip(theirs, keras_layers(ours).values()):
        for a, (_, b) in zip(layer.get_weights(), layer_variables(mine), strict=True):
            np.testing.assert_array_equal(a, np.asarray(b[...]))
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    ours.eval()
    np.testing.assert_allclose(np.asarray(ours(jnp.asarray(x))), twin.predict(x, verbose=0), atol=1e-5)
