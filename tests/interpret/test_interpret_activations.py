"""Intermediate activations through taps: equal to a manual forward, eval mode, early stop,
default layer choice, name errors, and listing 10.6's grid."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.interpret import activation_grid, activations, conv_and_pool_layers, save_activation_grids
from jaxvision.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Rescaling
from jaxvision.models import Sequential


class Explode(nnx.Module):
    """A layer that must never run: proves the forward stops after the last wanted layer."""

    def __call__(self, x):
        raise AssertionError("forward ran past the last requested layer")


def small_model(extra=()):
    rngs = nnx.Rngs(0)
    return Sequential([Rescaling(1 / 255), Dropout(0.5, rngs=rngs), Conv2D(3, 4, 3, activation="relu", rngs=rngs),
                       MaxPooling2D(2), Conv2D(4, 6, 3, activation="relu", rngs=rngs), *extra,
                       Flatten(), Dense(54, 2, rngs=rngs)])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, size=(2, 12, 12, 3)).astype(np.float32)


def test_default_layers_are_every_spatial_output_and_the_book_picks_conv_and_pool(images):
    model = small_model()
    assert conv_and_pool_layers(model, images.shape) == ["conv2d", "max_pooling2d", "conv2d_1"]
    acts = activations(model, images)
    assert {name: a.shape for name, a in acts.items()} == {
        "rescaling": (2, 12, 12, 3), "dropout": (2, 12, 12, 3), "conv2d": (2, 10, 10, 4),
        "max_pooling2d": (2, 5, 5, 4), "conv2d_1": (2, 3, 3, 6)}


def test_nested_model_layers_are_reached_by_path(images):
    inner = Sequential([Conv2D(3, 4, 3, activation="relu", rngs=nnx.Rngs(0)), MaxPooling2D(2)])
    model = Sequential([("rescale", Rescaling(1 / 255)), ("backbone", inner), Flatten(), Dense(100, 2, rngs=nnx.Rngs(0))])
    assert conv_and_pool_layers(model, images.shape) == ["backbone/conv2d", "backbone/max_pooling2d"]
    acts = activations(model, images, ["backbone/conv2d", "backbone"])
    expected = np.maximum(0, np.asarray(inner.conv2d(jnp.asarray(images) / 255)))
    np.testing.assert_allclose(acts["backbone/conv2d"], expected, rtol=1e-5, atol=1e-6)
    assert acts["backbone"].shape == (2, 5, 5, 4)


def test_activations_equal_a_manual_forward_in_eval_mode(images):
    model = small_model()
    model.train()
    acts = activations(model, images, ["conv2d_1", "conv2d", "dense"])
    assert list(acts) == ["conv2d_1", "conv2d", "dense"]
    # Manual forward, Dropout skipped: activations() must run the model in eval mode.
    conv = model.conv2d(model.rescaling(jnp.asarray(images)))
    conv_1 = model.conv2d_1(model.max_pooling2d(conv))
    dense = model.dense(model.flatten(conv_1))
    for name, expected in [("conv2d", conv), ("conv2d_1", conv_1), ("dense", dense)]:
        np.testing.assert_allclose(acts[name], np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert float(np.abs(acts["conv2d"]).max()) > 0
    assert model.dropout.deterministic is False  # the caller's model keeps its training mode


def test_forward_stops_after_the_last_requested_layer(images):
    model = small_model(extra=[Explode()])
    acts = activations(model, images, ["conv2d"])
    np.testing.assert_allclose(acts["conv2d"], np.asarray(model.conv2d(jnp.asarray(images) / 255)),
                               rtol=1e-5, atol=1e-6)


def test_unknown_layer_lists_the_available_names(images):
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['conv9'\].*available: \['rescaling', "
                                         r"'dropout', 'conv2d', 'max_pooling2d', 'conv2d_1', 'flatten', 'dense'\]"):
        activations(small_model(), images, ["conv2d", "conv9"])


def test_activation_grid_standardises_each_channel():
    rng = np.random.default_rng(1)
    act = rng.normal(size=(5, 4, 20)) * 3 + 1
    act[..., 1] = 0.0  # an all-zero channel stays black
    grid = activation_grid(act, images_per_row=16)
    assert grid.shape == (2 * 5 + 1, 16 * 4 + 15) and grid.dtype == np.uint8
    # Channel 17 sits in row 1, column 1 of the grid.
    cell = grid[6:11, 5:9]
    channel = act[..., 17]
    expected = np.clip((channel - channel.mean()) / channel.std() * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(cell, expected)
    assert not grid[0:5, 5:9].any()  # channel 1
    assert not grid[5].any() and not grid[:, 4].any()  # 1-pixel separators
    assert not grid[6:11, 4 * 5:].any()  # cells past channel 19 stay empty


def test_save_activation_grids_writes_one_png_per_layer(tmp_path, images):
    acts = activations(small_model(), images, ["conv2d", "max_pooling2d", "conv2d_1"])
    paths = save_activation_grids(acts, tmp_path, images_per_row=2)
    assert [p.name for p in paths] == ["conv2d.png", "max_pooling2d.png", "conv2d_1.png"]
    with Image.open(paths[0]) as png:  # 4 channels of 10×10, 2 per row
        assert png.size == (2 * 11 - 1, 2 * 11 - 1) and png.mode == "RGB"
    with Image.open(paths[2]) as png:  # 6 channels of 3×3, 2 per row
        assert png.size == (2 * 4 - 1, 3 * 4 - 1)
