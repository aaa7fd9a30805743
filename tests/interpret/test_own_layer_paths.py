"""The sublayers of a user's own layer (the own-model guide's fork of SeparableConv2D, whose
``pointwise_bn`` is called inside its ``__call__``) are reached by path: their activations,
Grad-CAM on them (against the formula applied by hand) and their rows in ``summary``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.interpret import activations, grad_cam
from jaxvision.layers import Dense, GlobalAveragePooling2D, Layer, depthwise_step, pointwise_conv
from jaxvision.models import Sequential, summary
from own_layer import fork_module


@pytest.fixture(scope="module")
def model():
    fork = fork_module()
    rngs = nnx.Rngs(0)
    model = Sequential([("sepbn", fork.SeparableConvBN(3, 8, 3, activation="relu", rngs=rngs)),
                        ("sepbn_1", fork.SeparableConvBN(8, 8, 3, padding="same", rngs=rngs)),
                        GlobalAveragePooling2D(), Dense(8, 3, rngs=rngs)])
    bn = model.sepbn.pointwise_bn
    bn.moving_mean[...] = jnp.linspace(-0.2, 0.2, 8)
    bn.moving_variance[...] = jnp.linspace(0.5, 1.5, 8)
    return model


X = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)


def test_activations_and_shapes_reach_a_nested_sublayer(model):
    layer = model.sepbn
    expected = layer.pointwise_bn(pointwise_conv(depthwise_step(layer, jnp.asarray(X), layer.depthwise_kernel[...]),
                                                 layer.pointwise_kernel[...]))
    found = activations(model, X, ["sepbn/pointwise_bn"])["sepbn/pointwise_bn"]
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    assert float(jnp.min(expected)) < 0  # before the layer's ReLU: a different tensor from "sepbn"
    names = list(model.layer_shapes(X.shape))
    assert names[:4] == ["sepbn/pointwise_bn", "sepbn", "sepbn_1/pointwise_bn", "sepbn_1"]
    text = summary(model, X.shape, print_fn=None)
    row = next(line for line in text.splitlines() if "pointwise_bn (BatchNormalization)" in line)
    assert "(None, 6, 6, 8)" in row and "32" in row.split()  # 4 × 8 weights


def test_grad_cam_on_a_nested_sublayer_is_the_formula(model):
    heatmaps = grad_cam(model, X, "sepbn/pointwise_bn", class_index=1)
    layer = model.sepbn
    a = layer.pointwise_bn(pointwise_conv(depthwise_step(layer, jnp.asarray(X), layer.depthwise_kernel[...]),
                                          layer.pointwise_kernel[...]))

    def score(a):  # the rest of the model, from the sublayer's output
        y = model.dense(model.global_average_pooling2d(model.sepbn_1(jax.nn.relu(a))))
        return y[:, 1].sum()

    weights = jax.grad(score)(a).mean(axis=(1, 2))
    cam = jax.nn.relu(jnp.einsum("nhwc,nc->nhw", a, weights) / 8)
    expected = cam / cam.max(axis=(1, 2), keepdims=True)
    assert heatmaps.shape == (2, 6, 6)
    np.testing.assert_allclose(heatmaps, expected, rtol=1e-5, atol=1e-6)


def test_a_sublayer_called_twice_is_tapped_once_per_call():
    from jaxvision.layers import Activation

    class Twice(Layer):
        def __init__(self):
            self.act = Activation("relu")

        def __call__(self, x):
            return self.act(self.act(x) - 1.0)

    model = Sequential([("twice", Twice())])
    found = activations(model, X, ["twice/act", "twice/act:1"])
    np.testing.assert_array_equal(found["twice/act"], np.maximum(X, 0))
    np.testing.assert_array_equal(found["twice/act:1"], np.maximum(np.maximum(X, 0) - 1, 0))
