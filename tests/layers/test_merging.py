"""Merge layers (Add, Multiply, Concatenate, ScaledAdd): Keras parity with broadcasting and
three inputs, gradients, dtype policy and input errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxvision.layers import Add, Concatenate, Multiply, ScaledAdd, set_policy


def normal(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


ELEMENTWISE_SHAPES = [
    [(2, 4, 4, 3), (2, 4, 4, 3)],
    [(2, 4, 4, 3), (2, 1, 1, 3), (2, 4, 4, 1)],  # a squeeze-excitation gate, a per-pixel map
    [(3, 5), (3, 5), (3, 5)],
    [(1, 2, 2, 3), (1, 2, 2, 3)],
]


@pytest.mark.parametrize("layer_cls", [Add, Multiply])
@pytest.mark.parametrize("shapes", ELEMENTWISE_SHAPES)
def test_elementwise_keras_parity(keras, layer_cls, shapes):
    xs = [normal(s, seed=i) for i, s in enumerate(shapes)]
    ours = np.asarray(layer_cls()([jnp.asarray(x) for x in xs]))
    theirs = np.asarray(getattr(keras.layers, layer_cls.__name__)()(xs))
    assert ours.shape == theirs.shape == np.broadcast_shapes(*shapes)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis, shapes", [
    (-1, [(2, 4, 4, 3), (2, 4, 4, 5), (2, 4, 4, 1)]),
    (3, [(2, 3, 3, 2), (2, 3, 3, 4)]),
    (1, [(2, 3, 5), (2, 1, 5)]),
])
def test_concatenate_keras_parity(keras, axis, shapes):
    xs = [normal(s, seed=i) for i, s in enumerate(shapes)]
    ours = np.asarray(Concatenate(axis)([jnp.asarray(x) for x in xs]))
    theirs = np.asarray(keras.layers.Concatenate(axis=axis)(xs))
    np.testing.assert_array_equal(ours, theirs)


def test_scaled_add_equals_keras_custom_scale_layer():
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    x, branch = normal((2, 3, 3, 4), 0), normal((2, 3, 3, 4), 1)
    ours = np.asarray(ScaledAdd(0.17)([jnp.asarray(x), jnp.asarray(branch)]))
    np.testing.assert_array_equal(ours, np.asarray(CustomScaleLayer(0.17)([x, branch])))
    np.testing.assert_allclose(ours, x + 0.17 * branch, rtol=1e-6)


def test_sums_run_left_to_right_like_keras():
    # 1e8 + (-1e8) + 1 is 1 left to right in float32, but 0 as 1e8 + ((-1e8) + 1).
    xs = [jnp.full((1, 1), v, jnp.float32) for v in (1e8, -1e8, 1.0)]
    assert float(Add()(xs)[0, 0]) == 1.0


@pytest.mark.parametrize("make", [Add, Multiply, Concatenate, lambda: ScaledAdd(0.3)])
def test_gradients_wrt_every_input(x64, make):
    layer = set_policy(make(), "float64")
    xs = [jnp.asarray(np.random.default_rng(i).normal(size=(2, 3, 3, 2))) for i in range(2)]
    if isinstance(layer, (Add, Multiply)):
        xs.append(jnp.asarray(np.random.default_rng(5).normal(size=(2, 1, 1, 2))))  # broadcast too
    assert layer(xs).dtype == jnp.float64
    check_grads(lambda *xs: layer(list(xs)), xs, order=1, modes=("fwd", "rev"))


def test_inputs_are_cast_to_the_compute_dtype():
    xs = [jnp.ones((1, 2), jnp.float32), jnp.ones((1, 2), jnp.bfloat16)]
    for layer in (Add(dtype="mixed_bfloat16"), Concatenate(dtype="mixed_bfloat16"), ScaledAdd(0.5, dtype="bfloat16")):
        assert layer(xs).dtype == jnp.bfloat16
    assert Add()(xs).dtype == jnp.float32


def test_bad_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"Add 'block_add': inputs have incompatible shapes \[\(2, 4, 4, 3\), "
                                         r"\(2, 4, 4, 5\)\]"):
        Add(name="block_add")([jnp.ones((2, 4, 4, 3)), jnp.ones((2, 4, 4, 5))])
    with pytest.raises(ValueError, match="incompatible shapes"):  # batch sizes differ
        Multiply()([jnp.ones((2, 3)), jnp.ones((1, 3))])
    with pytest.raises(ValueError, match=r"Concatenate 'mixed0': inputs need matching shapes except on the "
                                         r"concatenation axis -1"):
        Concatenate(name="mixed0")([jnp.ones((2, 4, 4, 3)), jnp.ones((2, 5, 5, 3))])
    with pytest.raises(ValueError, match="cannot concatenate shapes"):
        Concatenate(axis=4)([jnp.ones((2, 4, 4, 3)), jnp.ones((2, 4, 4, 3))])
    with pytest.raises(ValueError, match="expected a list of at least 1 arrays, got Array"):
        Add()(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="expected a list of 2 arrays"):
        ScaledAdd(0.1)([jnp.ones((1, 2))] * 3)
    with pytest.raises(ValueError, match="input 1 is a str"):
        Concatenate()([jnp.ones((1, 2)), "x"])
    with pytest.raises(ValueError, match="axis must be an int"):
        Concatenate(axis="channels")
