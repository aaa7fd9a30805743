"""BatchNormalization: Keras parity in both modes (outputs and moving statistics), the
train/eval switch, gradients and input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import BatchNormalization, set_policy
from layer_checks import training


def randomised(in_channels, seed=0, **kwargs):
    """A layer whose four vectors are all non-trivial, so each one's role is tested."""
    bn = BatchNormalization(in_channels, rngs=nnx.Rngs(0), **kwargs)
    rng = np.random.default_rng(seed)
    if bn.gamma is not None:
        bn.gamma[...] = jnp.asarray(rng.uniform(0.5, 2.0, in_channels), jnp.float32)
    if bn.beta is not None:
        bn.beta[...] = jnp.asarray(rng.normal(size=in_channels), jnp.float32)
    bn.moving_mean[...] = jnp.asarray(rng.normal(size=in_channels), jnp.float32)
    bn.moving_variance[...] = jnp.asarray(rng.uniform(0.5, 2.0, in_channels), jnp.float32)
    return bn


def keras_copy(keras, bn, input_shape):
    layer = keras.layers.BatchNormalization(momentum=bn.momentum, epsilon=bn.epsilon,
                                            center=bn.center, scale=bn.scale)
    layer.build(input_shape)
    # Keras's weight order: gamma, beta (each only if enabled), moving_mean, moving_variance.
    weights = [v for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance) if v is not None]
    layer.set_weights([np.asarray(v[...]) for v in weights])
    return layer


def batches(shape, count, seed=1):
    rng = np.random.default_rng(seed)
    # Channel-dependent location and spread, far from the initial moving statistics.
    return [(rng.normal(size=shape) * 3.0 + 5.0 + np.arange(shape[-1])).astype(np.float32) for _ in range(count)]


def assert_close(ours, theirs, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=atol)


def assert_same_statistics(bn, layer):
    assert_close(bn.moving_mean[...], layer.moving_mean.value, rtol=1e-6, atol=1e-7)
    assert_close(bn.moving_variance[...], layer.moving_variance.value, rtol=1e-6, atol=1e-7)


def test_initial_values_and_collections():
    bn = BatchNormalization(3, rngs=nnx.Rngs(0))
    assert isinstance(bn.gamma, nnx.Param) and isinstance(bn.beta, nnx.Param)
    assert isinstance(bn.moving_mean, nnx.BatchStat) and isinstance(bn.moving_variance, nnx.BatchStat)
    np.testing.assert_array_equal(np.asarray(bn.gamma[...]), np.ones(3))
    np.testing.assert_array_equal(np.asarray(bn.beta[...]), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(bn.moving_mean[...]), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance[...]), np.ones(3))
    assert bn.use_running_average is True  # inference mode until train(), as a Keras layer
    no_affine = BatchNormalization(3, center=False, scale=False, rngs=nnx.Rngs(0))
    assert no_affine.gamma is None and no_affine.beta is None
    assert len(jax.tree.leaves(nnx.state(no_affine, nnx.Param))) == 0


@pytest.mark.parametrize("shape, kwargs", [
    ((4, 3, 5, 3), {}),
    ((6, 4), {"momentum": 0.9}),
    ((3, 4, 4, 2), {"momentum": 0.5, "epsilon": 1e-5, "center": False}),
    ((5, 3), {"scale": False}),
])
def test_training_matches_keras_over_several_steps(keras, shape, kwargs):
    bn = training(randomised(shape[-1], **kwargs))
    layer = keras_copy(keras, bn, shape)
    for x in batches(shape, 3):
        assert_close(bn(jnp.asarray(x)), layer(x, training=True))
        assert_same_statistics(bn, layer)


def test_training_step_follows_the_formula():
    bn = training(randomised(3, momentum=0.8))
    gamma, beta = np.asarray(bn.gamma[...], np.float64), np.asarray(bn.beta[...], np.float64)
    mean0, var0 = np.asarray(bn.moving_mean[...], np.float64), np.asarray(bn.moving_variance[...], np.float64)
    (x,) = batches((4, 2, 3, 3), 1)
    y = bn(jnp.asarray(x))
    axes = (0, 1, 2)
    mean, var = x.mean(axes, dtype=np.float64), x.var(axes, ddof=0, dtype=np.float64)  # biased
    assert_close(y, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta)
    np.testing.assert_allclose(np.asarray(bn.moving_mean[...]), mean0 * 0.8 + mean * 0.2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(bn.moving_variance[...]), var0 * 0.8 + var * 0.2, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3, 5, 3), (6, 3)])
def test_inference_matches_keras_and_keeps_statistics(keras, shape):
    bn = randomised(shape[-1])
    layer = keras_copy(keras, bn, shape)
    bn.eval()
    assert bn.use_running_average is True
    mean, var = np.asarray(bn.moving_mean[...]), np.asarray(bn.moving_variance[...])
    gamma, beta = np.asarray(bn.gamma[...]), np.asarray(bn.beta[...])
    for x in batches(shape, 2):
        y = bn(jnp.asarray(x))
        assert_close(y, layer(x, training=False))
        assert_close(y, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta)
        np.testing.assert_array_equal(np.asarray(bn.moving_mean[...]), mean)
        np.testing.assert_array_equal(np.asarray(bn.moving_variance[...]), var)


class Block(nnx.Module):
    def __init__(self):
        self.inner = nnx.List([BatchNormalization(2, rngs=nnx.Rngs(0))])

    def __call__(self, x):
        return self.inner[0](x)


def test_eval_and_train_switch_the_mode_of_nested_layers():
    model = Block()
    x = jnp.asarray(batches((8, 2), 1)[0])
    assert model.inner[0].use_running_average is True
    np.testing.assert_allclose(model(x), x / np.sqrt(1 + 1e-3), rtol=1e-6)  # fresh: moving statistics
    model.train()
    trained = model(x)
    np.testing.assert_allclose(np.asarray(trained.mean(0)), [0.0, 0.0], atol=1e-5)  # batch statistics
    model.eval()
    assert model.inner[0].use_running_average is True
    stats = np.asarray(model.inner[0].moving_mean[...])
    inferred = model(x)
    assert not np.allclose(np.asarray(inferred), np.asarray(trained), atol=1e-2)
    np.testing.assert_array_equal(np.asarray(model.inner[0].moving_mean[...]), stats)
    model.train()
    assert model.inner[0].use_running_average is False
    model(x)
    assert not np.array_equal(np.asarray(model.inner[0].moving_mean[...]), stats)


def test_statistics_update_in_a_jitted_gradient_step():
    bn, eager = randomised(3), randomised(3)

    @nnx.jit
    def step(layer, x):
        # The statistics update must escape both nnx.jit and nnx.grad, as in a training step.
        def loss(layer):
            y = layer(x)
            return (y ** 2).mean(), y

        (_, y), grads = nnx.value_and_grad(loss, has_aux=True)(layer)
        return y, grads

    for x in batches((4, 2, 2, 3), 3):
        y, grads = step(bn, jnp.asarray(x))
        assert_close(y, eager(jnp.asarray(x)), rtol=1e-6, atol=1e-6)
        assert {path for path, _ in nnx.to_flat_state(grads)} == {("gamma",), ("beta",)}
    assert_close(bn.moving_mean[...], eager.moving_mean[...], rtol=1e-6, atol=1e-7)
    assert_close(bn.moving_variance[...], eager.moving_variance[...], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("inference", [False, True])
def test_gradients_wrt_input_and_params(x64, inference):
    bn = randomised(3, momentum=0.9)
    if inference:
        bn.eval()
    graphdef, params, rest = nnx.split(set_policy(bn, "float64"), nnx.Param, ...)

    def apply(params, x):
        # A fresh copy per call: training mode writes its statistics into the copy only.
        return nnx.merge(graphdef, params, rest, copy=True)(x)

    x = jnp.asarray(batches((4, 2, 2, 3), 1)[0], jnp.float64)
    assert apply(params, x).dtype == jnp.float64
    check_grads(apply, (params, x), order=2, modes=("fwd", "rev"))


def test_rejects_bad_input():
    bn = BatchNormalization(3, rngs=nnx.Rngs(0), name="bn")
    with pytest.raises(ValueError, match=r"BatchNormalization 'bn': expected input of rank >= 2 .*got shape \(3,\)"):
        bn(jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"'bn': expected 3 input channels .*got shape \(2, 4, 4, 5\)"):
        bn(jnp.ones((2, 4, 4, 5)))
    with pytest.raises(ValueError, match=r"BatchNormalization 'bn': expected a floating-point input, got dtype int32"):
        bn(jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"BatchNormalization: momentum must be in \[0, 1\], got 1.5"):
        BatchNormalization(3, momentum=1.5, rngs=nnx.Rngs(0))
