"""The book models of ch. 8 (the plain convnets share mnist_convnet's layers), 9 and 11 against
their Keras twins: Keras writes (legacy .h5, .weights.h5, .keras), jaxvision reads; jaxvision
writes, Keras's load_weights reads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.applications.pretrained import build
from jaxvision.weights import keras_layers, load_keras_weights, save_keras_weights
from jaxvision.weights.model_layers import layer_variables
from keras_files import fill_uniform, randomise, write_legacy_h5
from keras_twins import keras_mini_xception, keras_mnist_convnet, keras_segmenter

BOOK_MODELS = {  # builder kwargs, Keras twin, input shape
    "mnist_convnet": ({}, lambda keras: keras_mnist_convnet(keras), (2, 28, 28, 1)),
    "mini_xception": ({"augmented": False}, lambda keras: keras_mini_xception(keras, 32), (2, 32, 32, 3)),
    "segmentation_model": ({"img_size": [32, 32]}, lambda keras: keras_segmenter(keras, (32, 32)), (2, 32, 32, 3)),
}


@pytest.mark.parametrize("name", BOOK_MODELS)
def test_book_model_round_trips_with_its_keras_twin(keras, tmp_path, name):
    kwargs, make_twin, shape = BOOK_MODELS[name]
    x = np.asarray(jax.random.uniform(jax.random.key(0), shape) * 255)
    twin = make_twin(keras)
    randomise(twin, seed=1)
    expected = twin.predict(x, verbose=0)
    # Keras → jaxvision, every Keras 3 format.
    write_legacy_h5(keras, twin, tmp_path / "twin.h5")
    twin.save_weights(tmp_path / "twin.weights.h5")
    twin.save(tmp_path / "twin.keras")
    for path in ("twin.h5", "twin.weights.h5", "twin.keras"):
        model = build(name, path, **kwargs)  # zero weights, overwritten by the file
        load_keras_weights(model, tmp_path / path)
        model.eval()
        np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5, err_msg=path)
    # jaxvision → Keras: its own (different) weights, loaded exactly.
    ours = build(name, "random", **kwargs)
    fill_uniform(ours, seed=3)
    save_keras_weights(ours, tmp_path / "ours.weights.h5")
    twin.load_weights(tmp_path / "ours.weights.h5")
    theirs = [layer for layer in twin.layers if layer.weights]
    assert [len(layer.weights) for layer in theirs] == [len(layer_variables(layer)) for layer in keras_layers(ours).values()]
    for layer, mine in zip(theirs, keras_layers(ours).values()):
        for a, (_, b) in zip(layer.get_weights(), layer_variables(mine)):
            np.testing.assert_array_equal(a, np.asarray(b[...]))
    ours.eval()
    np.testing.assert_allclose(np.asarray(ours(jnp.asarray(x))), twin.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
