"""Dtype policies: every layer under mixed_bfloat16 against float32, Keras's input autocast
(bfloat16/float16 inputs to a float32 layer), what stays float32, policies set globally, per
scope and per model, losses in float32, and the MNIST convnet trained in bfloat16."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Conv2DTranspose, Dense,
                              DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D,
                              MaxPooling2D, RandomFlip, RandomRotation, RandomZoom, Rescaling, ResidualBlock,
                              SeparableConv2D, get_policy, global_policy, policy_scope, set_global_policy, set_policy)
from jaxvision.data.mnist import load_mnist_sample
from jaxvision.models import Sequential, build_model
from jaxvision.train import binary_crossentropy, evaluate, fit, sparse_categorical_crossentropy

# name: (factory taking dtype=..., input shape). Float outputs of softmax/sigmoid stay float32.
LAYERS = {
    "conv2d": (lambda **d: Conv2D(3, 4, 3, padding="same", activation="relu", rngs=nnx.Rngs(0), **d), (2, 6, 6, 3)),
    "conv2d_transpose": (lambda **d: Conv2DTranspose(3, 4, 3, strides=2, padding="same", rngs=nnx.Rngs(0), **d),
                         (2, 4, 4, 3)),
    "depthwise_conv2d": (lambda **d: DepthwiseConv2D(3, 3, depth_multiplier=2, rngs=nnx.Rngs(0), **d), (2, 5, 5, 3)),
    "separable_conv2d": (lambda **d: SeparableConv2D(3, 4, 3, padding="same", rngs=nnx.Rngs(0), **d), (2, 5, 5, 3)),
    "dense_softmax": (lambda **d: Dense(5, 4, activation="softmax", rngs=nnx.Rngs(0), **d), (3, 5)),
    "dense_sigmoid": (lambda **d: Dense(5, 1, activation="sigmoid", rngs=nnx.Rngs(0), **d), (3, 5)),
    "dense_linear": (lambda **d: Dense(5, 4, rngs=nnx.Rngs(0), **d), (3, 5)),
    "batch_normalization": (lambda **d: BatchNormalization(3, rngs=nnx.Rngs(0), **d), (4, 3, 3, 3)),
    "max_pooling2d": (lambda **d: MaxPooling2D(2, **d), (2, 4, 4, 3)),
    "average_pooling2d": (lambda **d: AveragePooling2D(2, padding="same", **d), (2, 5, 5, 3)),
    "global_average_pooling2d": (lambda **d: GlobalAveragePooling2D(**d), (2, 4, 4, 3)),
    "global_max_pooling2d": (lambda **d: GlobalMaxPooling2D(**d), (2, 4, 4, 3)),
    "flatten": (lambda **d: Flatten(**d), (2, 2, 2, 3)),
    "rescaling": (lambda **d: Rescaling(1 / 127.5, offset=-1.0, **d), (2, 3, 3, 3)),
    "activation": (lambda **d: Activation("tanh", **d), (3, 5)),
    "dropout": (lambda **d: Dropout(0.5, rngs=nnx.Rngs(0), **d), (3, 8)),
    "residual_block": (lambda **d: ResidualBlock(3, 4, pooling=True, rngs=nnx.Rngs(0), **d), (1, 5, 5, 3)),
}
FLOAT32_OUTPUTS = {"dense_softmax", "dense_sigmoid"}


def sample(shape, seed=0) -> np.ndarray:
    scale = 127.5 if len(shape) == 4 else 1.0
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def params(layer) -> list[jax.Array]:
    return jax.tree.leaves(nnx.state(layer, nnx.Param))


@pytest.mark.parametrize("name", LAYERS)
def test_mixed_bfloat16_is_float32_within_bfloat16_tolerance(name):
    factory, shape = LAYERS[name]
    reference, mixed = factory(dtype="float32"), factory(dtype="mixed_bfloat16")
    for ours, theirs in zip(params(mixed), params(reference), strict=True):
        assert ours.dtype == jnp.float32  # parameters stay float32 under mixed_bfloat16
        np.testing.assert_array_equal(ours, theirs)
    x = sample(shape)
    expected, y = reference(jnp.asarray(x)), mixed(jnp.asarray(x))
    assert y.dtype == (jnp.float32 if name in FLOAT32_OUTPUTS else jnp.bfloat16)
    scale = float(jnp.abs(expected).max())
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=2e-2, atol=2e-2 * scale)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("low", [jnp.bfloat16, jnp.float16])
def test_low_precision_inputs_are_cast_to_the_compute_dtype_like_keras(name, low):
    factory, shape = LAYERS[name]
    layer = factory()
    x = jnp.asarray(sample(shape, seed=1)).astype(low)
    y = nnx.clone(layer)(x)  # a copy, so Dropout draws the same mask twice
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, layer(x.astype(jnp.float32)))


def test_batch_normalization_keeps_float32_statistics():
    bn = BatchNormalization(3, momentum=0.5, rngs=nnx.Rngs(0), dtype="bfloat16")
    bn.train()
    assert bn.gamma.dtype == jnp.bfloat16 and bn.moving_mean.dtype == bn.moving_variance.dtype == jnp.float32
    x = jnp.asarray(sample((8, 2, 2, 3)) + 1000.0)  # a mean bfloat16 cannot hold to 1 part in 1e3
    x16 = x.astype(jnp.bfloat16)
    assert bn(x).dtype == jnp.bfloat16
    expected = 0.5 * np.asarray(x16, np.float64).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(bn.moving_mean[...], expected, rtol=1e-6)


def test_augmentation_runs_in_float32():
    # bfloat16 images come back in bfloat16, but computed in float32 and rounded once.
    rngs = nnx.Rngs(augment=0)
    images = jnp.asarray(sample((2, 6, 6, 3)) + 128.0).astype(jnp.bfloat16)
    for layer in (RandomFlip("horizontal", rngs=rngs), RandomRotation(0.1, rngs=rngs), RandomZoom(0.2, rngs=rngs)):
        params = layer.sample(jax.random.key(3), 2)
        out = layer.transform(images, params)
        assert out.dtype == jnp.bfloat16
        np.testing.assert_array_equal(out, layer.transform(images.astype(jnp.float32), params).astype(jnp.bfloat16))


def test_losses_clip_in_float32_whatever_the_prediction_dtype():
    # bfloat16 rounds 1 - 1e-7 to 1: clipping there would leave log(0) = -inf.
    certain_wrong = jnp.asarray([[1.0], [1.0]], jnp.bfloat16)
    loss = binary_crossentropy(jnp.asarray([0.0, 0.0]), certain_wrong)
    assert loss.dtype == jnp.float32
    assert float(loss) == pytest.approx(float(binary_crossentropy(jnp.zeros(2), certain_wrong.astype(jnp.float32))))
    assert float(loss) == pytest.approx(-np.log(np.float32(1) - np.float32(1 - 1e-7)), rel=1e-6)
    probabilities = jnp.asarray([[1.0, 0.0]], jnp.bfloat16)
    sparse = sparse_categorical_crossentropy(jnp.asarray([1]), probabilities)
    assert sparse.dtype == jnp.float32 and float(sparse) == pytest.approx(-np.log(1e-7), rel=1e-6)


def test_policies_by_name_globally_per_scope_and_per_model():
    assert [(p.compute_dtype, p.param_dtype) for p in map(get_policy, ("float32", "mixed_bfloat16", "bfloat16"))] == [
        (jnp.float32, jnp.float32), (jnp.bfloat16, jnp.float32), (jnp.bfloat16, jnp.bfloat16)]
    with pytest.raises(ValueError, match=r"unknown dtype policy 'mixed_float8'"):
        get_policy("mixed_float8")
    with pytest.raises(ValueError, match=r"unknown dtype policy 'int8'"):
        Dense(2, 2, rngs=nnx.Rngs(0), dtype="int8")
    set_global_policy("mixed_bfloat16")
    try:
        assert Conv2D(1, 2, 3, rngs=nnx.Rngs(0)).dtype == jnp.bfloat16
    finally:
        set_global_policy("float32")
    with policy_scope("bfloat16"):
        model = Sequential([Conv2D(1, 4, 3, rngs=nnx.Rngs(0)), BatchNormalization(4, rngs=nnx.Rngs(0)),
                            GlobalAveragePooling2D(), Dense(4, 3, activation="softmax", rngs=nnx.Rngs(0))])
    assert global_policy().name == "float32"
    assert {p.dtype for p in params(model)} == {jnp.dtype(jnp.bfloat16)}
    set_policy(model, "mixed_bfloat16")
    assert {p.dtype for p in params(model)} == {jnp.dtype(jnp.float32)}
    assert model.batch_normalization.moving_mean.dtype == jnp.float32
    out, taps = model.intermediates(jnp.ones((1, 5, 5, 1)), ["conv2d"])
    assert taps["conv2d"].dtype == jnp.bfloat16 and out.dtype == jnp.float32  # softmax in float32


def test_mnist_convnet_trains_to_the_same_accuracy_in_bfloat16():
    (x_train, y_train), (x_test, y_test) = load_mnist_sample()
    x_train, x_test = (x[:n, ..., None].astype(np.float32) / 255 for x, n in ((x_train, 1024), (x_test, 512)))
    y_train, y_test = y_train[:1024].astype(np.int32), y_test[:512].astype(np.int32)
    accuracies = {}
    for policy in ("float32", "mixed_bfloat16"):
        with policy_scope(policy):
            model = build_model("mnist_convnet", seed=0)
        fit(model, (x_train, y_train), epochs=2, batch_size=32, loss="sparse_categorical_crossentropy",
            optimizer=optax.adam(3e-3), metrics=["accuracy"], seed=0, verbose=0)
        accuracies[policy] = evaluate(model, (x_test, y_test), loss="sparse_categorical_crossentropy",
                                      metrics=["accuracy"], batch_size=256)["accuracy"]
    # 64 steps: 0.85 in float32 and 0.84 in mixed_bfloat16 when measured.
    assert min(accuracies.values()) > 0.75 and abs(accuracies["mixed_bfloat16"] - accuracies["float32"]) < 0.05, accuracies
