"""Freezing with Keras semantics: the recursive ``trainable`` flag, parameter counts, ``fit``
leaving frozen weights and frozen BatchNorm statistics bit-identical, Keras parity of a
training run with frozen layers, and checkpoints across freezing."""

import jax
import numpy as np
import optax
from flax import nnx

from jaxvision.layers import BatchNormalization, Dense, count_params, unfreeze_except_batchnorm
from jaxvision.models import Sequential, summary
from jaxvision.train import Callback, ModelCheckpoint, fit, restore
from train_helpers import blobs, weights


class Capture(Callback):
    def on_train_end(self, logs, trainer):
        self.trainer = trainer


def mlp(seed: int = 0) -> Sequential:
    """Dense → BatchNorm → Dense, with BatchNorm statistics far from their initial values."""
    model = Sequential([Dense(2, 8, activation="relu", rngs=nnx.Rngs(seed)), BatchNormalization(8, rngs=nnx.Rngs(0)),
                        Dense(8, 2, activation="softmax", rngs=nnx.Rngs(seed + 1))])
    rng = np.random.default_rng(seed)
    model.batch_normalization.moving_mean[...] = rng.normal(size=8).astype(np.float32)
    model.batch_normalization.moving_variance[...] = rng.uniform(0.5, 2.0, 8).astype(np.float32)
    return model


def test_flag_is_recursive_like_keras():
    model = mlp()
    model.trainable = False
    assert not any(layer.trainable for layer in (model.dense, model.batch_normalization, model.dense_1))
    assert count_params(model) == (0, 8 * 2 + 8 + 4 * 8 + 8 * 2 + 2)
    model.trainable = True  # unfreezes everything inside again
    assert count_params(model) == (8 * 2 + 8 + 2 * 8 + 8 * 2 + 2, 2 * 8)
    model.dense.trainable = False
    assert count_params(model) == (2 * 8 + 8 * 2 + 2, 8 * 2 + 8 + 2 * 8)
    unfreeze_except_batchnorm(model)
    assert (model.dense.trainable, model.batch_normalization.trainable, model.dense_1.trainable) == (True, False, True)
    assert count_params(model) == (8 * 2 + 8 + 8 * 2 + 2, 4 * 8)
    text = summary(model, (1, 2), print_fn=lambda _: None).splitlines()
    assert text[-3:] == [" Total params: 74 (296.00 B)", " Trainable params: 42 (168.00 B)",
                         " Non-trainable params: 32 (128.00 B)"]


def test_frozen_batchnorm_runs_in_inference_mode_like_keras(keras):
    x = np.random.default_rng(1).normal(size=(16, 8)).astype(np.float32) * 3 + 2
    bn = mlp().batch_normalization
    bn.train()
    layer = keras.layers.BatchNormalization()
    layer.build((None, 8))
    layer.set_weights([np.asarray(v[...]) for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)])
    bn.trainable, layer.trainable = False, False
    before = np.asarray(bn.moving_mean[...])
    ours = np.asarray(bn(x))  # train mode (use_running_average is False)
    np.testing.assert_allclose(ours, np.asarray(layer(x, training=True)), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(bn.moving_mean[...]), before)
    bn.trainable = True
    assert np.abs(np.asarray(bn(x)) - ours).max() > 0.1  # batch statistics again


def test_fit_leaves_frozen_weights_and_statistics_bit_identical_and_optimises_only_the_rest():
    x, y = blobs(96)
    model = mlp()
    model.dense.trainable = False
    model.batch_normalization.trainable = False
    before = weights(model)
    capture = Capture()
    fit(model, (x, y), epochs=2, loss="sparse_categorical_crossentropy", optimizer=optax.adam(0.05),
        batch_size=32, verbose=0, callbacks=[capture])
    after = weights(model)
    frozen = [k for k in before if k.startswith(("dense/", "batch_normalization/"))]
    assert len(frozen) == 6
    for name in frozen:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    for name in ("dense_1/kernel", "dense_1/bias"):
        assert not np.array_equal(after[name], before[name]), name
    # Adam's two moments cover exactly the trainable parameters.
    trainer = capture.trainer
    assert sorted(path for path, _ in nnx.to_flat_state(trainer.carry.params)) == [("dense_1", "bias"), ("dense_1", "kernel")]
    moments = [leaf.shape for leaf in jax.tree.leaves(trainer.carry.opt_state) if leaf.ndim > 0]
    assert sorted(moments) == sorted([(2,), (8, 2)] * 2)


def test_training_with_frozen_layers_matches_keras(keras):
    x, y = blobs(64)
    model = mlp()
    reference = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.BatchNormalization(), keras.layers.Dense(2, activation="softmax")])
    names = ["dense/kernel", "dense/bias", "batch_normalization/gamma", "batch_normalization/beta",
             "batch_normalization/moving_mean", "batch_normalization/moving_variance", "dense_1/kernel", "dense_1/bias"]
    initial = weights(model)
    reference.set_weights([initial[name] for name in names])
    model.dense.trainable, reference.layers[0].trainable = False, False
    model.batch_normalization.trainable, reference.layers[1].trainable = False, False
    reference.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    fit(model, (x, y), epochs=2, loss="sparse_categorical_crossentropy", optimizer=optax.sgd(0.5), batch_size=16,
        shuffle=False, verbose=0)
    ours = weights(model)
    for name, value in zip(names, [np.asarray(v.value) for v in reference.weights], strict=True):
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(ours["batch_normalization/moving_mean"], initial["batch_normalization/moving_mean"])
    assert np.abs(ours["dense_1/kernel"] - initial["dense_1/kernel"]).max() > 0.05  # it did train


def test_checkpoint_of_a_frozen_model_restores_into_an_unfrozen_one(tmp_path):
    x, y = blobs(64)
    model = mlp()
    model.dense.trainable = False
    fit(model, (x, y), epochs=1, loss="sparse_categorical_crossentropy", optimizer=optax.adam(0.05), verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "best", monitor="loss")])
    fresh = mlp(seed=5)
    restore(tmp_path / "best", fresh)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(weights(fresh)[name], value, err_msg=name)


def test_split_derives_each_graphs_modes_once_and_follows_freezing(monkeypatch):
    """``predict``/``fit`` split the model on every call; deriving the train and eval graphs
    (a merge and three walks of the graph, seconds for a DenseNet) happens once per graph
    definition, and freezing a layer (a new graph definition) is still seen."""
    from collections import OrderedDict

    from jaxvision.train import predict, steps
    from jaxvision.train.steps import split

    monkeypatch.setattr(steps, "_DERIVED", OrderedDict())  # as if no test had split this graph before
    model = mlp()
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    first = predict(model, x, batch_size=4)
    merges = []
    original = nnx.merge
    monkeypatch.setattr(nnx, "merge", lambda *a, **k: merges.append(1) or original(*a, **k))
    np.testing.assert_array_equal(predict(model, x, batch_size=4), first)
    assert merges == []  # the second call: nothing derived again, nothing retraced
    _, _, params, _, state = split(model)
    assert len(jax.tree.leaves(params)) == 6 and len(jax.tree.leaves(state)) == 2
    model.dense.trainable = False
    _, _, params, _, state = split(model)
    assert len(merges) == 1  # a new graph definition
    assert len(jax.tree.leaves(params)) == 4 and len(jax.tree.leaves(state)) == 4
    assert split(model)[2] is not params and len(merges) == 1
