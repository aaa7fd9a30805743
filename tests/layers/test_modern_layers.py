"""The layers of the depthwise and modern applications: LayerNormalization, Normalization,
LayerScale, StochasticDepth, Dropout's noise_shape, Conv2D groups and the hard-sigmoid /
hard-swish / swish / GELU activations, each equal to Keras 3 and gradient-checked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import (Activation, Conv2D, Cropping2D, Dropout, LayerNormalization, LayerScale, Normalization,
                              StochasticDepth, get_activation)
from layer_checks import check_layer_grads, fast_rngs

RNG = np.random.default_rng(0)


def close(ours, theirs, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(2, 5, 5, 8), (3, 8)])
def test_layer_normalization_equals_keras(keras, shape):
    x = (RNG.normal(size=shape) * 3 + 2).astype(np.float32)
    ln = LayerNormalization(shape[-1], epsilon=1e-6, rngs=nnx.Rngs(0))
    ln.gamma[...] = RNG.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
    ln.beta[...] = RNG.normal(size=shape[-1]).astype(np.float32)
    twin = keras.layers.LayerNormalization(epsilon=1e-6)
    twin.build(shape)
    twin.set_weights([np.asarray(ln.gamma[...]), np.asarray(ln.beta[...])])
    close(ln(jnp.asarray(x)), twin(x))
    ln.train()  # no moving statistics: training changes nothing
    close(ln(jnp.asarray(x)), twin(x, training=True))


def test_layer_normalization_gradients_and_errors(x64):
    check_layer_grads(LayerNormalization(4, rngs=nnx.Rngs(0)), (2, 3, 4), seed=1)
    with pytest.raises(ValueError, match="LayerNormalization 'ln': expected 4 input channels"):
        LayerNormalization(4, rngs=nnx.Rngs(0), name="ln")(jnp.ones((2, 3)))


def test_normalization_stored_and_constant_statistics_equal_keras(keras):
    data = (RNG.normal(size=(64, 4, 4, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, -2.0]).astype(np.float32)
    adapted = keras.layers.Normalization(axis=-1)
    adapted.adapt(data)
    ours = Normalization(3, rngs=nnx.Rngs(0))
    mean, variance, count = adapted.get_weights()
    ours.mean[...], ours.variance[...], ours.count[...] = mean, variance, count
    x = data[:2]
    close(ours(jnp.asarray(x)), adapted(x))
    constant = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 0.25])  # 0: Keras's epsilon floor
    ours_constant = Normalization(3, mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 0.25])
    assert not nnx.state(ours_constant, nnx.BatchStat)  # constants hold no weights, as in Keras
    close(ours_constant(jnp.asarray(x)), constant(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(3, mean=[0.0, 0.0, 0.0])


def test_normalization_gradient(x64):
    layer = Normalization(3, mean=[0.5, -1.0, 2.0], variance=[4.0, 1.0, 0.25])
    check_grads(lambda x: layer(x), (jnp.asarray(RNG.normal(size=(2, 3))),), order=1, modes=("fwd", "rev"))


def test_layer_scale_equals_keras_convnext_layer_scale(keras, x64):
    from keras.src.applications.convnext import LayerScale as KerasLayerScale

    twin = KerasLayerScale(1e-6, 5)
    twin.build((2, 5))
    ours = LayerScale(1e-6, 5)
    close(ours.gamma[...], twin.gamma.value, rtol=0, atol=0)
    gamma = RNG.normal(size=5).astype(np.float32)
    ours.gamma[...] = gamma
    twin.set_weights([gamma])
    x = RNG.normal(size=(2, 3, 5)).astype(np.float32)
    close(ours(jnp.asarray(x)), twin(x))
    check_layer_grads(LayerScale(0.5, 4), (2, 4), seed=2)


@pytest.mark.parametrize("name", ["hard_sigmoid", "hard_swish", "swish", "gelu"])
def test_activations_equal_keras_and_have_gradients(keras, x64, name):
    x = np.concatenate([np.linspace(-5, 5, 41), RNG.normal(size=20) * 3]).astype(np.float32)  # ±3: the kinks
    close(Activation(name)(jnp.asarray(x)), keras.layers.Activation(name)(x), rtol=1e-6, atol=1e-7)
    smooth = jnp.asarray(RNG.uniform(-2.5, 2.5, 16))  # away from the hard kinks at ±3
    check_grads(get_activation(name), (smooth,), order=1, modes=("fwd", "rev"))


def keep_statistics(y: np.ndarray, scale: float) -> tuple[float, bool]:
    """Fraction of examples kept, and whether every value is 0 or ``scale`` per whole example."""
    flat = y.reshape(y.shape[0], -1)
    whole = bool(np.all((flat == flat[:, :1]).all(axis=1)))
    values = np.unique(flat)
    assert np.all((values == 0) | np.isclose(values, scale, rtol=1e-6)), values
    return float((flat[:, 0] != 0).mean()), whole


def test_stochastic_depth_identity_in_inference_keep_rate_and_scaling_in_training(keras):
    from keras.src.applications.convnext import StochasticDepth as KerasStochasticDepth

    rate, n = 0.3, 20_000
    x = np.ones((n, 2, 2, 3), np.float32)
    layer = StochasticDepth(rate, rngs=nnx.Rngs(dropout=0))
    np.testing.assert_array_equal(np.asarray(layer(jnp.asarray(x))), x)
    layer.train()
    kept, whole = keep_statistics(np.asarray(layer(jnp.asarray(x))), 1 / (1 - rate))
    keras_kept, keras_whole = keep_statistics(np.asarray(KerasStochasticDepth(rate)(x, training=True)), 1 / (1 - rate))
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n)  # four standard deviations of the kept fraction
    assert whole and keras_whole
    assert abs(kept - (1 - rate)) < tolerance and abs(keras_kept - (1 - rate)) < tolerance
    with pytest.raises(ValueError, match="drop_path_rate must be in"):
        StochasticDepth(1.0, rngs=nnx.Rngs(0))


def test_dropout_noise_shape_drops_whole_examples_like_keras(keras):
    rate, n = 0.25, 20_000
    x = np.ones((n, 2, 2, 3), np.float32)
    layer = Dropout(rate, noise_shape=(None, 1, 1, 1), rngs=nnx.Rngs(dropout=1))
    layer.train()
    kept, whole = keep_statistics(np.asarray(layer(jnp.asarray(x))), 1 / (1 - rate))
    twin = keras.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), seed=1)
    keras_kept, keras_whole = keep_statistics(np.asarray(twin(x, training=True)), 1 / (1 - rate))
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n)
    assert whole and keras_whole
    assert abs(kept - (1 - rate)) < tolerance and abs(keras_kept - (1 - rate)) < tolerance
    with pytest.raises(ValueError, match="noise_shape"):
        layer(jnp.ones((2, 3)))


@pytest.mark.parametrize("groups, filters", [(6, 6), (6, 12), (2, 4)])
def test_grouped_conv2d_equals_keras(keras, groups, filters):
    conv = Conv2D(6, filters, 3, padding="same", groups=groups, rngs=fast_rngs())
    conv.bias[...] = RNG.normal(size=filters).astype(np.float32)
    assert conv.kernel.shape == (3, 3, 6 // groups, filters)
    twin = keras.layers.Conv2D(filters, 3, padding="same", groups=groups)
    twin.build((2, 7, 7, 6))
    twin.set_weights([np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])])
    x = RNG.normal(size=(2, 7, 7, 6)).astype(np.float32)
    close(conv(jnp.asarray(x)), twin(x), atol=1e-5)


def test_grouped_conv2d_gradients_and_errors(x64):
    check_layer_grads(Conv2D(4, 4, 3, padding="same", groups=4, rngs=fast_rngs()), (1, 5, 5, 4), seed=3)
    check_layer_grads(Conv2D(4, 2, 2, groups=2, rngs=fast_rngs()), (1, 4, 4, 4), seed=4)
    with pytest.raises(ValueError, match="groups must be a positive int dividing in_channels"):
        Conv2D(6, 4, 3, groups=4, rngs=nnx.Rngs(0))


def test_cropping2d_equals_keras_and_refuses_to_crop_everything(keras):
    x = RNG.normal(size=(2, 5, 6, 3)).astype(np.float32)
    for cropping in (1, (1, 2), ((1, 0), (0, 2))):
        close(Cropping2D(cropping)(jnp.asarray(x)), keras.layers.Cropping2D(cropping)(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="Cropping2D 'crop': cropping .* leaves nothing"):
        Cropping2D(((3, 2), (0, 0)), name="crop")(jnp.asarray(x))
