"""Orbax checkpoints: round trips, load_model, resume, BackupAndRestore, atomic writes,
ModelCheckpoint and EarlyStopping."""

import types

import jax
import numpy as np
import pytest
from flax import nnx

from jaxvision.models import build_model, register
from jaxvision.train import (BackupAndRestore, Callback, CSVLogger, EarlyStopping, ModelCheckpoint, TensorBoard, fit,
                             load_model, predict, restore)
from jaxvision.train import checkpoint
from train_helpers import assert_same_weights, blobs, dropout_bn_net, train_kwargs, weights

DATA, VALIDATION = blobs(100), blobs(32, seed=1)
COMPILES = []  # every XLA compilation of this process, by name of the event
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: COMPILES.append(event) if event.endswith("backend_compile_duration") else None)


@register
def train_test_tiny_net(seed: int):
    return dropout_bn_net(seed)


@pytest.fixture(scope="module")
def four_epochs():
    """The uninterrupted reference run."""
    model = dropout_bn_net()
    history = fit(model, DATA, **train_kwargs(epochs=4, validation_data=VALIDATION))
    return model, history


def test_round_trip_restores_identical_outputs(tmp_path):
    model = dropout_bn_net()
    fit(model, DATA, **train_kwargs(epochs=2, callbacks=[ModelCheckpoint(tmp_path / "ckpt", save_best_only=False)]))
    saved = checkpoint.load(tmp_path / "ckpt")
    assert (saved.epoch, saved.step, saved.seed) == (2, 8, 0)
    assert sorted(saved.state) == ["batch_normalization/moving_mean", "batch_normalization/moving_variance"]
    other = restore(tmp_path / "ckpt", dropout_bn_net(seed=7))
    assert_same_weights(model, other)
    np.testing.assert_array_equal(predict(model, DATA[0]), predict(other, DATA[0]))


def test_load_model_rebuilds_a_registered_model(tmp_path):
    model = build_model("train_test_tiny_net", seed=0)
    fit(model, DATA, **train_kwargs(epochs=1, callbacks=[ModelCheckpoint(tmp_path / "ckpt", monitor="loss")]))
    before = len(COMPILES)
    loaded = load_model(tmp_path / "ckpt")
    # Built abstractly: no initialiser runs; one small program makes the dropout stream's key
    # (before: one compilation per initialiser and random op, 12 s for a 2.7k-weight model).
    assert len(COMPILES) - before == 1
    assert loaded.build_config == model.build_config
    assert loaded.dropout.deterministic and loaded.batch_normalization.use_running_average  # eval mode
    assert_same_weights(model, loaded)
    fresh = nnx.state(build_model("train_test_tiny_net", seed=0), nnx.RngState)
    np.testing.assert_array_equal(jax.random.key_data(nnx.state(loaded, nnx.RngState)["dropout"]["rngs"]["key"][...]),
                                  jax.random.key_data(fresh["dropout"]["rngs"]["key"][...]))
    assert checkpoint.recorded_input(tmp_path / "ckpt") == ((DATA[0].shape[1],), "float32")  # fit's data
    np.testing.assert_array_equal(predict(model, DATA[0]), predict(loaded, DATA[0]))


def test_load_model_without_build_config_and_mismatched_restore_are_clear(tmp_path):
    fit(dropout_bn_net(), DATA, **train_kwargs(epochs=1, callbacks=[ModelCheckpoint(tmp_path / "c", monitor="loss")]))
    with pytest.raises(ValueError, match=r"no build_config.*jaxvision.train.restore\(path, model\)"):
        load_model(tmp_path / "c")
    from flax import nnx
    from jaxvision.layers import Dense
    from jaxvision.models import Sequential
    wrong = Sequential([Dense(2, 4, rngs=nnx.Rngs(0)), Dense(4, 2, rngs=nnx.Rngs(0))])
    with pytest.raises(ValueError, match=r"dense/kernel: model has shape/dtype \(\(2, 4\)"):
        restore(tmp_path / "c", wrong)
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        load_model(tmp_path / "missing")


def test_resume_from_a_checkpoint_is_bit_identical(tmp_path, four_epochs):
    reference, reference_history = four_epochs
    fit(dropout_bn_net(), DATA, **train_kwargs(epochs=2, validation_data=VALIDATION,
                                               callbacks=[ModelCheckpoint(tmp_path / "c", save_best_only=False)]))
    fresh = dropout_bn_net(seed=9)  # a new model object with other initial weights: all come from the checkpoint
    history = fit(fresh, DATA, **train_kwargs(epochs=4, validation_data=VALIDATION, resume_from=tmp_path / "c"))
    assert_same_weights(reference, fresh)
    assert history.history == reference_history.history and history.epoch == [0, 1, 2, 3]


class Crash(Callback):
    def on_epoch_end(self, epoch, logs, trainer):
        if epoch == 1:
            raise KeyboardInterrupt("simulated crash at the end of epoch 2")


def test_backup_and_restore_resumes_after_a_crash(tmp_path, four_epochs):
    reference, _ = four_epochs
    backup = BackupAndRestore(tmp_path / "backup")
    model = dropout_bn_net()
    with pytest.raises(KeyboardInterrupt):
        fit(model, DATA, **train_kwargs(epochs=4, validation_data=VALIDATION, callbacks=[backup, Crash()]))
    # The crash came before the epoch-2 backup (backups run after other callbacks): epoch 1's remains.
    assert checkpoint.load(tmp_path / "backup").epoch == 1
    restarted = dropout_bn_net(seed=4)
    history = fit(restarted, DATA, **train_kwargs(epochs=4, validation_data=VALIDATION, callbacks=[backup]))
    assert_same_weights(reference, restarted)
    assert history.epoch == [0, 1, 2, 3]
    assert not (tmp_path / "backup").exists()  # deleted once training finished


def test_a_crash_mid_write_leaves_the_last_checkpoint_loadable(tmp_path, monkeypatch):
    from orbax.checkpoint._src.path import async_path

    path = tmp_path / "ckpt"
    model = dropout_bn_net()
    fit(model, DATA, **train_kwargs(epochs=1, callbacks=[ModelCheckpoint(path, save_best_only=False)]))
    first = weights(restore(path, dropout_bn_net(seed=3)))

    async def crash(*args, **kwargs):
        raise OSError("simulated crash before the atomic rename")

    monkeypatch.setattr(async_path, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        fit(model, DATA, **train_kwargs(epochs=1, callbacks=[ModelCheckpoint(path, save_best_only=False)]))
    leftovers = sorted(p.name for p in path.iterdir())
    assert leftovers[0] == "1" and "orbax-checkpoint-tmp" in leftovers[1]  # the new one never became visible
    assert checkpoint.load(path).epoch == 1
    again = weights(restore(path, dropout_bn_net(seed=3)))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    monkeypatch.undo()
    fit(model, DATA, **train_kwargs(epochs=1, callbacks=[ModelCheckpoint(path, save_best_only=False)]))
    assert [p.name for p in path.iterdir()] == ["2"]  # the next save commits and cleans up


def test_model_checkpoint_keeps_the_best_epoch(tmp_path):
    history = fit(dropout_bn_net(), DATA, **train_kwargs(epochs=4, validation_data=VALIDATION,
                                                         callbacks=[ModelCheckpoint(tmp_path / "best", save_best_only=True)]))
    best_epoch = int(np.argmin(history.history["val_loss"])) + 1
    saved = checkpoint.load(tmp_path / "best")
    assert saved.epoch == best_epoch
    assert saved.callbacks == [("ModelCheckpoint", {"best": min(history.history["val_loss"])})]


class FakeTrainer:
    def __init__(self):
        self.stop_training, self.weights = False, 0
        self.progress = types.SimpleNamespace(message=lambda text: None)

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights


@pytest.mark.parametrize("patience, min_delta, mode, values", [
    (2, 0.0, "auto", [1.0, 0.9, 0.95, 0.96, 0.97, 0.5]),
    (1, 0.05, "auto", [1.0, 0.97, 0.9, 0.88, 0.87, 0.8]),
    (0, 0.0, "max", [0.5, 0.6, 0.6, 0.7]),
])
def test_early_stopping_matches_keras(keras, patience, min_delta, mode, values):
    monitor = "val_loss" if mode == "auto" else "val_accuracy"
    ours, trainer = EarlyStopping(monitor, patience=patience, min_delta=min_delta, mode=mode,
                                  restore_best_weights=True), FakeTrainer()
    theirs = keras.callbacks.EarlyStopping(monitor, patience=patience, min_delta=min_delta, mode=mode)
    theirs.set_model(types.SimpleNamespace(stop_training=False))
    ours.on_train_begin(trainer)
    theirs.on_train_begin()
    for epoch, value in enumerate(values):
        trainer.weights = epoch  # "weights" = the epoch they come from
        ours.on_epoch_end(epoch, {monitor: value}, trainer)
        theirs.on_epoch_end(epoch, {monitor: value})
        assert trainer.stop_training == theirs.model.stop_training
        if trainer.stop_training:
            break
    assert trainer.stop_training and epoch < len(values) - 1  # every case stops early
    assert (ours.best, ours.wait, ours.stopped_epoch) == (theirs.best, theirs.wait, theirs.stopped_epoch)
    ours.on_train_end({}, trainer)
    assert trainer.weights == theirs.best_epoch == ours.best_epoch  # restored the best epoch's weights


def test_early_stopping_keeps_its_best_weights_and_epoch_across_a_resume(tmp_path):
    # mode="max" on the loss makes the first epoch the best one, long before the crash.
    def callbacks():
        return [EarlyStopping("loss", patience=10, mode="max", restore_best_weights=True),
                BackupAndRestore(tmp_path / "backup")]

    reference = dropout_bn_net()
    stopper = callbacks()[0]
    fit(reference, DATA, **train_kwargs(epochs=4, callbacks=[stopper]))
    assert stopper.best_epoch == 0
    with pytest.raises(KeyboardInterrupt):
        fit(dropout_bn_net(), DATA, **train_kwargs(epochs=4, callbacks=[*callbacks(), Crash()]))
    resumed, restarted = dropout_bn_net(seed=4), callbacks()
    fit(resumed, DATA, **train_kwargs(epochs=4, callbacks=restarted))
    assert restarted[0].best_epoch == 0 and restarted[0].best == stopper.best
    assert_same_weights(reference, resumed)  # the first epoch's weights, saved before the crash


def test_a_run_that_stopped_early_is_not_trained_again_from_its_backup(tmp_path):
    def callbacks():
        return [EarlyStopping("loss", patience=0, mode="max"), BackupAndRestore(tmp_path / "b", delete_checkpoint=False)]

    model = dropout_bn_net()
    history = fit(model, DATA, **train_kwargs(epochs=6, callbacks=callbacks()))
    assert history.epoch == [0, 1]  # stopped after the second epoch
    again = dropout_bn_net(seed=5)
    history = fit(again, DATA, **train_kwargs(epochs=6, callbacks=callbacks()))
    assert history.epoch == [0, 1]
    assert_same_weights(model, again)


@pytest.mark.parametrize("ours, name", [(ModelCheckpoint, "ModelCheckpoint"), (EarlyStopping, "EarlyStopping"),
                                        (BackupAndRestore, "BackupAndRestore"), (CSVLogger, "CSVLogger"),
                                        (TensorBoard, "TensorBoard")])
def test_callback_arguments_are_keras_names_order_and_defaults(keras, ours, name):
    import inspect

    theirs = inspect.signature(getattr(keras.callbacks, name)).parameters
    mine = inspect.signature(ours).parameters
    assert set(mine) <= set(theirs), f"not Keras names: {set(mine) - set(theirs)}"
    assert list(mine) == [p for p in theirs if p in mine]  # the same order
    assert {p: mine[p].default for p in mine} == {p: theirs[p].default for p in mine}


def test_fit_leaves_the_model_in_its_mode_and_built_models_infer_like_keras():
    x = DATA[0][:16]
    model = build_model("train_test_tiny_net", seed=0)  # eval mode: a plain call is inference
    fit(model, DATA, **train_kwargs(epochs=1))
    statistics = weights(model)["batch_normalization/moving_mean"]
    first, second = np.asarray(model(x)), np.asarray(model(x))
    np.testing.assert_array_equal(first, second)  # no dropout
    np.testing.assert_array_equal(weights(model)["batch_normalization/moving_mean"], statistics)  # no BN update
    np.testing.assert_allclose(first, predict(model, x), rtol=1e-6)
    training = dropout_bn_net()
    training.train()
    fit(training, DATA, **train_kwargs(epochs=1))
    assert not training.dropout.deterministic and not training.batch_normalization.use_running_average
