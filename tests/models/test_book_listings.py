"""Listings of ch. 8-9 that are not whole experiments, each beside the book's own Keras code:
8.5 (the convnet without max-pooling), 9.2 and 9.3 (single-conv residual blocks) and 8.29's
count of trainable weights before and after freezing a backbone."""

import jax
import numpy as np
import pytest
from flax import nnx

from jaxvision.applications import mobilenet, xception
from jaxvision.layers import Conv2D, ResidualBlock, count_params
from jaxvision.models import Sequential, build_model, summary
from keras_twins import keras_summary_cells, summary_cells


def keras_listing_8_5(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(inputs)
    x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
    x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def test_listing_8_5_the_convnet_without_max_pooling(keras):
    keras.backend.clear_session()  # Keras's automatic names start again at conv2d, as jaxvision's
    twin = keras_listing_8_5(keras)
    ours = build_model("mnist_convnet", pooling=False)
    assert count_params(ours) == (twin.count_params(), 0) == (372_234, 0)
    shapes = ours.layer_shapes((1, 28, 28, 1))
    assert [shapes[n][1:] for n in ("conv2d", "conv2d_1", "conv2d_2")] == [
        tuple(layer.output.shape[1:]) for layer in twin.layers[1:4]] == [(26, 26, 64), (24, 24, 128), (22, 22, 256)]
    text = summary(ours, (1, 28, 28, 1), print_fn=None)  # the book's model_no_max_pool.summary()
    assert summary_cells(text) == keras_summary_cells(twin)
    assert ["conv2d_2 (Conv2D)", "(None, 22, 22, 256)", "295,168"] in summary_cells(text)[0]
    assert " Total params: 372,234 (1.42 MB)" in text
    # Same parameters as listing 8.1, but the convolutions run on larger maps: the summary's
    # argument for pooling, measured by XLA.
    def flops(model):
        graphdef, state = nnx.split(model)
        forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        return forward.lower(state, jax.ShapeDtypeStruct((1, 28, 28, 1), np.float32)).compile().cost_analysis()["flops"]
    assert 14 < flops(ours) / flops(build_model("mnist_convnet")) < 17


def keras_listing(keras, pooling):
    """Listing 9.2 (``pooling=False``) and 9.3 as the book writes them."""
    layers = keras.layers
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    residual = x
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    if pooling:
        x = layers.MaxPooling2D(2, padding="same")(x)
        residual = layers.Conv2D(64, 1, strides=2)(residual)
    else:
        residual = layers.Conv2D(64, 1)(residual)
    x = layers.add([x, residual])
    return keras.Model(inputs=inputs, outputs=x)


@pytest.mark.parametrize("pooling, shape", [(False, (2, 30, 30, 64)), (True, (2, 15, 15, 64))])
def test_listings_9_2_and_9_3_single_conv_residual_blocks(keras, pooling, shape):
    rngs = nnx.Rngs(0)
    ours = Sequential([Conv2D(3, 32, 3, activation="relu", rngs=rngs),
                       ResidualBlock(32, 64, pooling=pooling, convs=1, rngs=rngs)])
    twin = keras_listing(keras, pooling)
    conv, block_conv, projection = (layer for layer in twin.layers if layer.weights)
    block = ours.residual_block
    for layer, source in ((conv, ours.conv2d), (block_conv, block.conv1), (projection, block.shortcut)):
        layer.set_weights([np.asarray(source.kernel[...]), np.asarray(source.bias[...])])
    assert count_params(ours)[0] == twin.count_params() == 896 + 18_496 + 2_112
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(twin(x))
    assert expected.shape == shape
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("builder, keras_name, counts", [
    (lambda: xception(include_top=False), "Xception", (154, 234)),  # the book's backbone: 154 → 0
    (lambda: mobilenet(alpha=0.25, include_top=False), "MobileNet", (81, 135)),
])
def test_listing_8_29_trainable_weights_before_and_after_freezing(keras, builder, keras_name, counts):
    base = nnx.eval_shape(builder)  # shapes only: counting needs no arrays
    twin = getattr(keras.applications, keras_name)(include_top=False, weights=None, input_shape=(224, 224, 3),
                                                   **({"alpha": 0.25} if keras_name == "MobileNet" else {}))
    trainable, frozen = counts
    assert (len(base.trainable_weights), len(twin.trainable_weights)) == (trainable, trainable)
    assert len(base.non_trainable_weights) == len(twin.non_trainable_weights) == frozen - trainable
    base.trainable, twin.trainable = False, False
    assert len(base.trainable_weights) == len(twin.trainable_weights) == 0
    assert len(base.non_trainable_weights) == len(twin.non_trainable_weights) == frozen
