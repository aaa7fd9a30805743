"""The book's models: parameter counts, Keras parity with copied weights, the tap contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.models import build_model, rebuild_model
from jaxvision.models.summary import summary
from keras_twins import keras_mini_xception, keras_segmenter, keras_summary_cells, summary_cells

BOOK_COUNTS = [
    ("mnist_convnet", {}, (1, 28, 28, 1), 372_234, 0),
    ("dogs_vs_cats_convnet", {}, (1, 180, 180, 3), 1_569_089, 0),
    ("dogs_vs_cats_convnet", {"augmented": True}, (1, 180, 180, 3), 1_569_089, 0),
    ("residual_convnet", {}, (1, 32, 32, 3), 297_697, 0),
    ("mini_xception", {}, (1, 180, 180, 3), 721_857, 3_008),
    ("segmentation_model", {"image_size": [200, 200], "num_classes": 3}, (1, 200, 200, 3), 2_880_643, 0),
]


def count(model, kind) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, kind)))


@pytest.mark.parametrize("name, kwargs, input_shape, total, non_trainable", BOOK_COUNTS)
def test_parameter_counts_match_the_book(name, kwargs, input_shape, total, non_trainable):
    model = build_model(name, **kwargs)
    assert count(model, nnx.Param) + count(model, nnx.BatchStat) == total
    assert count(model, nnx.BatchStat) == non_trainable
    text = summary(model, input_shape, print_fn=lambda s: None)
    assert f"Total params: {total:,}" in text
    assert f"Non-trainable params: {non_trainable:,}" in text


def test_build_config_rebuilds_the_same_architecture():
    model = build_model("segmentation_model", image_size=[64, 48], num_classes=3, seed=3)
    twin = rebuild_model(model.build_config)
    x = jax.random.uniform(jax.random.key(0), (1, 64, 48, 3)) * 255
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(twin(x)))


@pytest.mark.parametrize("size", [(200, 200), (64, 48), (8, 16)])
def test_segmenter_output_has_the_input_size(size):
    model = build_model("segmentation_model", image_size=list(size), num_classes=3)
    assert model.layer_shapes((2, *size, 3))["conv2d_6"] == (2, *size, 3)


@pytest.mark.parametrize("size", [(201, 200), (199, 199), (100, 100)])
def test_segmenter_refuses_sizes_it_cannot_reproduce(size):
    with pytest.raises(ValueError, match=r"divisible by 8.*use e\.g\."):
        build_model("segmentation_model", image_size=list(size))


def test_intermediates_equal_a_manual_forward_and_unknown_names_are_listed():
    model = build_model("mnist_convnet")
    x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
    out, acts = model.intermediates(x, ["conv2d_1", "dense"])
    manual = model.conv2d_1(model.max_pooling2d(model.conv2d(x)))
    np.testing.assert_array_equal(np.asarray(acts["conv2d_1"]), np.asarray(manual))
    np.testing.assert_array_equal(np.asarray(acts["dense"]), np.asarray(out))
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['conv9'\].*'conv2d_2'"):
        model.intermediates(x, ["conv9"])


WEIGHT_ORDER = ("kernel", "depthwise_kernel", "pointwise_kernel", "bias", "gamma", "beta",
                "moving_mean", "moving_variance")


def layer_weights(layer) -> list[np.ndarray]:
    """A layer's arrays in Keras's ``get_weights()`` order."""
    return [np.asarray(getattr(layer, n)[...]) for n in WEIGHT_ORDER if getattr(layer, n, None) is not None]


def randomise_batch_stats(model, seed):
    """Non-trivial BN statistics, so inference-mode parity tests them too."""
    key = jax.random.key(seed)
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.BatchStat):
            key, sub = jax.random.split(key)
            var[...] = var[...] + 0.2 * jax.random.uniform(sub, var.shape)


def test_mini_xception_matches_keras_in_eval_and_training(keras):
    model = build_model("mini_xception", augmented=False, seed=5)
    randomise_batch_stats(model, 0)
    twin = keras_mini_xception(keras)
    # Keras's summary table, "Connected to" and the Add rows included.
    ours = summary_cells(summary(model, (1, 64, 64, 3), print_fn=None))
    assert ours == keras_summary_cells(twin)
    assert ["block1_add (Add)", "(None, 30, 30, 32)", "0", "block1_pool[0][0], block1_residual[0][0]"] in ours[0]
    for layer in twin.layers:
        if layer.weights:
            layer.set_weights(layer_weights(getattr(model, layer.name)))
    x = np.asarray(jax.random.uniform(jax.random.key(2), (4, 64, 64, 3)) * 255)
    model.eval()
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), np.asarray(twin(x, training=False)),
                               rtol=1e-4, atol=1e-5)
    # Training mode: batch statistics normalise, and the moving statistics update identically.
    model.train()
    model(jnp.asarray(x))
    twin(x, training=True)
    for i in range(1, 6):
        for bn in ("bn1", "bn2"):
            ours, theirs = getattr(model, f"block{i}_{bn}"), twin.get_layer(f"block{i}_{bn}")
            np.testing.assert_allclose(np.asarray(ours.moving_mean[...]), np.asarray(theirs.moving_mean),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(np.asarray(ours.moving_variance[...]), np.asarray(theirs.moving_variance),
                                       rtol=1e-4, atol=1e-5)


def test_segmenter_matches_keras(keras):
    model = build_model("segmentation_model", image_size=[48, 40], num_classes=3, seed=7)
    twin = keras_segmenter(keras, (48, 40))
    ours = [getattr(model, n) for n in model.layer_names if getattr(getattr(model, n), "kernel", None) is not None]
    theirs = [layer for layer in twin.layers if layer.weights]
    assert len(ours) == len(theirs) == 13
    for a, b in zip(ours, theirs):
        b.set_weights(layer_weights(a))
    x = np.asarray(jax.random.uniform(jax.random.key(3), (2, 48, 40, 3)) * 255)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), np.asarray(twin(x)), rtol=1e-4, atol=1e-6)


def test_the_rng_streams_of_nearby_seeds_share_no_key():
    from jaxvision.models import model_rngs
    from jaxvision.models.rngs import STREAMS

    keys = {(seed, name): tuple(np.asarray(jax.random.key_data(model_rngs(seed)[name].key[...])).tolist())
            for seed in range(4) for name in STREAMS}
    assert len(set(keys.values())) == len(keys) == 12
    # and the streams are the ones the models use: the same seed builds the same weights
    a, b = build_model("mnist_convnet", seed=1), build_model("mnist_convnet", seed=1)
    np.testing.assert_array_equal(np.asarray(a.conv2d.kernel[...]), np.asarray(b.conv2d.kernel[...]))
