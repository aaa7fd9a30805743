"""fit / evaluate / predict: learning, History, determinism, compile counts, NaN stop, output."""

import io

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.layers import Dense
from jaxvision.train import Callback, evaluate, fit, losses, predict
from jaxvision.train.progress import Progress
from train_helpers import assert_same_weights, blobs, dropout_bn_net, train_kwargs, weights


class Capture(Callback):
    """Keeps the trainer, to inspect its compiled steps."""

    def on_train_end(self, logs, trainer):
        self.trainer = trainer


def test_fit_learns_a_linearly_separable_problem_and_records_history():
    x, y = blobs(192)
    model = Dense(2, 1, activation="sigmoid", rngs=nnx.Rngs(0))
    history = fit(model, (x, y.astype(np.float32)), validation_data=blobs(64, seed=1), epochs=5,
                  loss="binary_crossentropy", optimizer=optax.adam(0.1), metrics=["accuracy"], verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 5 for v in history.history.values())
    assert history.history["val_accuracy"][-1] >= 0.95
    assert history.history["loss"][-1] < history.history["loss"][0]
    # evaluate = the sample-weighted mean over batches of unequal size = the loss on everything at once.
    scores = evaluate(model, (x, y.astype(np.float32)), loss="binary_crossentropy", metrics=["accuracy"], batch_size=64)
    probabilities = predict(model, x, batch_size=64)
    assert probabilities.shape == (192, 1)
    np.testing.assert_allclose(scores["loss"], losses.binary_crossentropy(y.astype(np.float32), probabilities), rtol=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean((probabilities[:, 0] > 0.5) == y))


def test_same_seed_is_bit_identical_and_another_seed_differs():
    x, y = blobs()
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        runs[name] = dropout_bn_net()  # same initial weights: only fit's seed (dropout, shuffling) varies
        fit(runs[name], (x, y), **train_kwargs(seed=seed))
    assert_same_weights(runs["a"], runs["b"])
    kernel = "dense/kernel"
    assert not np.array_equal(weights(runs["a"])[kernel], weights(runs["c"])[kernel])


def test_batch_statistics_update_and_predict_uses_eval_mode():
    x, y = blobs()
    model = dropout_bn_net()
    model.train()  # fit leaves the mode it finds, whichever it is
    before = weights(model)
    fit(model, (x, y), **train_kwargs(epochs=1))
    after = weights(model)
    assert not np.allclose(before["batch_normalization/moving_mean"], after["batch_normalization/moving_mean"])
    assert not model.dropout.deterministic and not model.batch_normalization.use_running_average
    first, second = predict(model, x), predict(model, x)
    np.testing.assert_array_equal(first, second)  # no dropout noise
    assert not model.dropout.deterministic  # predict left the model in train mode
    model.eval()
    np.testing.assert_allclose(first, np.asarray(model(x)), rtol=1e-6)


def test_train_step_compiles_once_per_batch_shape():
    # A partial last batch (100 = 3 * 32 + 4) has its own shape, hence a second compilation,
    # as in Keras; later epochs, and later fits of the same structure on arrays of the same
    # shape (the arrays live on the device and are arguments of the step), reuse both.
    x, y = blobs(100)
    capture = Capture()
    optimizer = optax.adam(0.05)  # a new optimizer: steps of their own, compiled from scratch
    fit(dropout_bn_net(), (x, y), **train_kwargs(epochs=3, optimizer=optimizer, callbacks=[capture]))
    steps = capture.trainer.steps
    assert capture.trainer.step == 3 * 4
    assert steps.train_gather._cache_size() == 2
    fit(dropout_bn_net(seed=3), blobs(100, seed=3), **train_kwargs(epochs=2, optimizer=optimizer, callbacks=[capture]))
    assert capture.trainer.steps is steps and capture.trainer.step == 2 * 4
    assert steps.train_gather._cache_size() == 2
    assert steps.train_batch._cache_size() == 0  # arrays were gathered on the device


class Batches:
    """A re-iterable loader with set_epoch and __len__, like a grain data loader."""

    def __init__(self, x, y, batch_size, poison=None):
        self.x, self.y, self.batch_size, self.poison = x, y, batch_size, poison
        self.epochs_seen = []

    def set_epoch(self, epoch):
        self.epochs_seen.append(epoch)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        for i, start in enumerate(range(0, len(self.x), self.batch_size)):
            x = self.x[start:start + self.batch_size].copy()
            if self.poison == (self.epochs_seen[-1], i):
                x[0] = np.nan
            yield x, self.y[start:start + self.batch_size]


def test_iterable_batches_train_like_arrays_in_order():
    x, y = blobs()
    loader = Batches(x, y, 32)
    from_loader, from_arrays = dropout_bn_net(), dropout_bn_net()
    fit(from_loader, loader, **train_kwargs())
    fit(from_arrays, (x, y), **train_kwargs(shuffle=False))
    assert loader.epochs_seen == [0, 1, 2]
    a, b = weights(from_loader), weights(from_arrays)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_good_weights(tmp_path):
    from jaxvision.train import ModelCheckpoint, restore

    x, y = blobs()
    model = dropout_bn_net()
    loader = Batches(x, y, 32, poison=(1, 2))  # epoch 2, step 3 (1-based)
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 2, step 3/4"):
        fit(model, loader, **train_kwargs(callbacks=[ModelCheckpoint(tmp_path / "ckpt", monitor="loss")]))
    assert all(np.isfinite(w).all() for w in weights(model).values())
    # The checkpoint of epoch 1 is intact and holds different (earlier) weights than the model.
    restored = restore(tmp_path / "ckpt", dropout_bn_net(seed=5))
    assert all(np.isfinite(w).all() for w in weights(restored).values())
    assert not np.array_equal(weights(restored)["dense/kernel"], weights(model)["dense/kernel"])


def test_progress_lines_and_live_bar(capsys):
    x, y = blobs()
    fit(dropout_bn_net(), (x, y), **train_kwargs(epochs=2, verbose=2, validation_data=(x[:20], y[:20])))
    lines = capsys.readouterr().out.splitlines()
    devices = len(jax.devices())
    assert lines[0] == (f"Training on {devices} × cpu device{'s' if devices > 1 else ''} (cpu) over 1 process, "
                        f"mesh {{'data': {devices}}}")  # once, before the first epoch
    assert len(lines) == 3 and lines[2].startswith("Epoch 2/2 - ")
    for part in ("img/s", "loss: ", "accuracy: ", "val_loss: ", "val_accuracy: "):
        assert part in lines[1]
    fit(dropout_bn_net(), (x, y), **train_kwargs(epochs=1, verbose=0))
    assert capsys.readouterr().out == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    progress = Progress(1, epochs=3, steps=4, stream=terminal)
    assert progress.due()
    progress.draw(0, 2, {"loss": 0.5})
    assert not progress.due()  # at most one redraw per 0.1 s
    progress.end_epoch(0, {"loss": 0.25}, seconds=1.0, images_per_second=100.0)
    bar = "Epoch 1/3 2/4 [============>...........] - loss: 0.5000"
    line = "Epoch 1/3 - 1.0s - 100 img/s - loss: 0.2500"  # padded to overwrite the bar
    assert terminal.getvalue() == f"\r{bar}\r{line.ljust(len(bar))}\n"


def test_bad_arguments_are_clear_errors():
    x, y = blobs()
    with pytest.raises(ValueError, match="x has 100 examples but y has 99"):
        fit(dropout_bn_net(), (x, y[:-1]), **train_kwargs())
    with pytest.raises(ValueError, match="one-shot iterator"):
        fit(dropout_bn_net(), iter([(x, y)]), **train_kwargs())
    with pytest.raises(ValueError, match="repeated: \\['accuracy'\\]"):
        fit(dropout_bn_net(), (x, y), **train_kwargs(metrics=["accuracy", "accuracy"]))


def test_augment_runs_inside_the_train_step_with_keys_fixed_by_seed_and_step():
    import jax

    from jaxvision.layers import AugmentBatch, RandomFlip
    from jaxvision.train.sources import epoch_order
    from jaxvision.train.steps import AUGMENT_STREAM

    x, y = blobs()
    flip = AugmentBatch([RandomFlip("horizontal", rngs=nnx.Rngs(augment=0))])
    swap = lambda xb, yb, key: (flip.apply_pair(xb[:, None, :, None], yb, key)[0][:, 0, :, 0], yb)  # noqa: E731
    capture = Capture()
    on_device = dropout_bn_net()
    fit(on_device, (x, y), **train_kwargs(epochs=2, augment=swap, callbacks=[capture]))
    assert capture.trainer.steps.train_batch._cache_size() == 0  # gathered and augmented on the device
    # The same batches augmented on the host with the step's key, fed as an iterable.
    batches, step = [], 0
    for epoch in range(2):
        order = epoch_order(len(x), seed=0, epoch=epoch)
        for start in range(0, len(x), 32):
            index = order[start:start + 32]
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), step), AUGMENT_STREAM)
            batches.append(jax.tree.map(np.asarray, swap(x[index], y[index], key)))
            step += 1
    assert not np.array_equal(batches[0][0], x[epoch_order(len(x), 0, 0)[:32]])  # some rows were flipped
    on_host = dropout_bn_net()
    fit(on_host, _Epochs(batches, per_epoch=4), **train_kwargs(epochs=2))
    a, b = weights(on_device), weights(on_host)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


class _Epochs:
    """Pre-made batches, ``per_epoch`` of them per epoch."""

    def __init__(self, batches, per_epoch):
        self.batches, self.per_epoch, self.epoch = batches, per_epoch, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(self.batches[self.epoch * self.per_epoch:(self.epoch + 1) * self.per_epoch])


def test_an_explicit_mesh_trains_like_the_default_and_needs_a_data_axis():
    import jax

    x, y = blobs()
    default, explicit = dropout_bn_net(), dropout_bn_net()
    fit(default, (x, y), **train_kwargs(epochs=1))
    fit(explicit, (x, y), **train_kwargs(epochs=1, mesh=jax.make_mesh((1,), ("data",))))
    assert_same_weights(default, explicit)
    with pytest.raises(ValueError, match=r"needs an axis named 'data'.*\('batch',\)"):
        fit(dropout_bn_net(), (x, y), **train_kwargs(mesh=jax.make_mesh((1,), ("batch",))))
