"""UpSampling2D: Keras parity for both interpolations and non-square factors, gradients, errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.layers import UpSampling2D
from layer_checks import check_layer_grads


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size, shape", [(2, (2, 3, 5, 4)), ((3, 2), (1, 4, 3, 2)), ((1, 4), (2, 1, 2, 3))])
def test_matches_keras(keras, interpolation, size, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = UpSampling2D(size, interpolation)(jnp.asarray(x))
    factors = (size, size) if isinstance(size, int) else size
    assert y.shape == (shape[0], shape[1] * factors[0], shape[2] * factors[1], shape[3])
    reference = keras.layers.UpSampling2D(size, interpolation=interpolation)(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(reference), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_gradients(x64, interpolation):
    check_layer_grads(UpSampling2D(2, interpolation), (1, 3, 2, 2), seed=0)


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match="UpSampling2D: interpolation must be one of"):
        UpSampling2D(2, "bicubic")
    with pytest.raises(ValueError, match="UpSampling2D: size must be a positive int"):
        UpSampling2D(0)
    with pytest.raises(ValueError, match=r"UpSampling2D 'up': expected input of rank 4"):
        UpSampling2D(name="up")(jnp.ones((2, 3, 3)))
