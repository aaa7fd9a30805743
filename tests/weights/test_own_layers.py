"""A researcher's own layers keep every weight in Keras weight files: a layer that holds
weights *and* sublayers (the own-model guide's fork of SeparableConv2D with a nested
BatchNormalization) is saved as Keras 3 saves a custom layer's tracked sublayers, random
module trees round-trip whole, the Keras custom-layer twin reads our file and we read its,
and a weight no file could carry is an error naming its path."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxvision.layers import BatchNormalization, Layer
from jaxvision.models import Sequential
from jaxvision.weights import keras_layers, load_keras_weights, save_keras_weights
from keras_twins import keras_sepbn_net
from own_layer import fork_module

SIZE = 8


def weights(model: nnx.Module) -> dict[str, np.ndarray]:
    return {"/".join(map(str, path)): np.asarray(v.get_value())
            for path, v in nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))}


@pytest.fixture(scope="module")
def fork():
    return fork_module()


def trained_like(model: nnx.Module, seed: int) -> nnx.Module:
    """Every weight, BatchNorm statistics included, set to seeded values away from their initial ones."""
    rng = np.random.default_rng(seed)
    for _, variable in nnx.iter_graph(model):
        if isinstance(variable, (nnx.Param, nnx.BatchStat)):
            values = rng.uniform(0.5, 1.5, variable.shape).astype(np.float32)
            variable[...] = jnp.asarray(values)
    return model


def test_a_forked_layer_keeps_its_nested_batchnorm(fork, tmp_path):
    """The issue's scenario: the nested BatchNormalization was not written, the load reported
    nothing missing, the moving variance fell back to 1.0 and the predictions moved."""
    model = trained_like(fork.sepbn_net(rngs=nnx.Rngs(0)), seed=1)
    model.sepbn_1.pointwise_bn.moving_variance[...] = jnp.full((8,), 0.836)
    save_keras_weights(model, tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        assert f["layers/separable_conv_bn_1/pointwise_bn/vars/3"][()].tolist() == [np.float32(0.836)] * 8
        assert len(f["layers/separable_conv_bn_1/vars"]) == 2  # its own kernels, beside the sublayer
    fresh = fork.sepbn_net(rngs=nnx.Rngs(5))
    result = load_keras_weights(fresh, tmp_path / "m.weights.h5")
    assert result.loaded == ("sepbn", "sepbn/pointwise_bn", "sepbn_1", "sepbn_1/pointwise_bn")
    assert result.missing == result.unexpected == ()
    expected = weights(model)  # every weight, so the same predictions
    assert {k: v.tolist() for k, v in weights(fresh).items()} == {k: v.tolist() for k, v in expected.items()}


class Node(Layer):
    """A module-tree node from a spec ``(params, statistics, frozen, children)``: its own
    weights (parameters of varied ranks, BatchNorm-like statistics) and child nodes."""

    def __init__(self, spec, rngs: nnx.Rngs):
        params, statistics, frozen, children = spec
        for i in range(params):
            setattr(self, f"w{i}", nnx.Param(jax.random.normal(rngs.params(), (2,) * (i + 1))))
        if statistics:
            self.moving_mean = nnx.BatchStat(jax.random.normal(rngs.params(), (3,)))
        for i, child in enumerate(children):
            setattr(self, f"child{i}", Node(child, rngs))
        if frozen:
            self.trainable = False


node_specs = st.recursive(
    st.tuples(st.integers(0, 2), st.booleans(), st.booleans(), st.just(())),
    lambda children: st.tuples(st.integers(0, 2), st.booleans(), st.booleans(),
                               st.lists(children, min_size=1, max_size=2).map(tuple)),
    max_leaves=6)


@settings(max_examples=12)
@given(st.lists(node_specs, min_size=1, max_size=3))
def test_random_module_trees_round_trip_whole(tmp_path_factory, specs):
    def build(seed):
        rngs = nnx.Rngs(seed)
        return Sequential([BatchNormalization(3, rngs=rngs), *(Node(spec, rngs) for spec in specs)])

    model, fresh = trained_like(build(0), seed=1), build(2)
    model.batch_normalization.trainable = False
    path = tmp_path_factory.mktemp("tree") / "t.weights.h5"
    save_keras_weights(model, path)
    load_keras_weights(fresh, path)
    expected = weights(model)
    assert sum(v.size for v in expected.values()) == sum(v.size for v in weights(fresh).values())
    for name, value in weights(fresh).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    # Every weight is in the file: as many datasets as weights, none twice.
    with h5py.File(path) as f:
        stored = []
        f.visititems(lambda name, node: stored.append(name) if isinstance(node, h5py.Dataset) else None)
    assert len(stored) == len(expected)


def test_a_weight_no_layer_attribute_reaches_is_an_error_naming_it(fork, tmp_path):
    model = fork.sepbn_net(rngs=nnx.Rngs(0))
    model.sepbn.extras = nnx.data([nnx.Param(jnp.ones(3)), {"scale": nnx.Param(jnp.ones(1))}])  # a plain list
    for action in (lambda: save_keras_weights(model, tmp_path / "m.weights.h5"), lambda: keras_layers(model)):
        with pytest.raises(ValueError, match=r"\['sepbn/extras/0', 'sepbn/extras/1/scale'\] are not attributes"):
            action()
    assert not (tmp_path / "m.weights.h5").exists()


@pytest.fixture(scope="module")
def twin(keras):
    keras.backend.clear_session()
    return keras_sepbn_net(keras, SIZE)


def keras_weights(twin) -> dict[str, list]:
    """The twin's weights under our paths: its layers' names, a nested BatchNormalization by
    the attribute its owner keeps it in (Keras names it by its own, automatic, name)."""
    found = {}
    for layer in twin.layers:
        for variable in layer.weights:
            owner, *inner = variable.path.split("/")
            path = "/".join([owner, "pointwise_bn", inner[-1]] if len(inner) > 1 else [owner, *inner])
            found[path] = variable.numpy().tolist()
    return found


def test_the_keras_custom_layer_twin_reads_our_file_and_we_read_its(fork, twin, tmp_path):
    ours = trained_like(fork.sepbn_net(rngs=nnx.Rngs(0)), seed=3)
    save_keras_weights(ours, tmp_path / "ours.weights.h5")
    twin.load_weights(tmp_path / "ours.weights.h5")
    expected = {k: v.tolist() for k, v in weights(ours).items()}
    assert len(expected) == 12 and keras_weights(twin) == expected

    for variable in twin.weights:  # Keras's own values now, saved by Keras
        variable.assign(np.random.default_rng(len(variable.path)).uniform(0.5, 1.5, variable.shape))
    twin.save_weights(tmp_path / "keras.weights.h5")
    fresh = fork.sepbn_net(rngs=nnx.Rngs(7))
    assert load_keras_weights(fresh, tmp_path / "keras.weights.h5").missing == ()
    assert {k: v.tolist() for k, v in weights(fresh).items()} == keras_weights(twin)
