"""``fit``, ``evaluate`` and ``predict``: Keras's training loop as three functions.

Examples:
    >>> import numpy as np, optax
    >>> from flax import nnx
    >>> from jaxvision.layers import Dense
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("float32")
    >>> model = Dense(2, 1, activation="sigmoid", rngs=nnx.Rngs(0))
    >>> history = fit(model, (x, y), epochs=3, loss="binary_crossentropy", optimizer=optax.adam(0.1),
    ...               metrics=["accuracy"], verbose=0)
    >>> sorted(history.history), len(history.history["loss"])
    (['accuracy', 'loss'], 3)
    >>> predict(model, x[:5]).shape
    (5, 1)
"""

import os
import time
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np
import optax
from flax import nnx

from jaxvision.optimizers import get_optimizer
from jaxvision.train import checkpoint
from jaxvision.train.callbacks import BackupAndRestore, Callback, ModelCheckpoint
from jaxvision.train.losses import Loss, get_loss
from jaxvision.train.metrics import Metric, get_metric
from jaxvision.train.progress import Progress
from jaxvision.train.history import History
from jaxvision.train.sharding import is_main_process, local_rows, pad_index, pad_rows, placement
from jaxvision.train.sources import ArraySource, as_source, prefetch
from jaxvision.train.steps import Objective, get_steps, init_sums, results, split
from jaxvision.train.trainer import Trainer, fetch


def _metrics(metrics: Sequence[str | Metric | Callable]) -> tuple[Metric, ...]:
    resolved = tuple(get_metric(m) for m in metrics)
    names = ["loss"] + [m.name for m in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"metric names must be unique (and not 'loss'); repeated: {duplicates}; pass name=...")
    return resolved


def _ordered(callbacks: Sequence[Callback]) -> list[Callback]:
    """Backups last, so they store the other callbacks' end-of-epoch state."""
    paths = [os.path.abspath(c.filepath if isinstance(c, ModelCheckpoint) else c.backup_dir)
             for c in callbacks if isinstance(c, (ModelCheckpoint, BackupAndRestore))]
    if len(set(paths)) != len(paths):
        raise ValueError(f"each ModelCheckpoint/BackupAndRestore needs its own directory, got {paths}")
    backups = [c for c in callbacks if isinstance(c, BackupAndRestore)]
    return [c for c in callbacks if not isinstance(c, BackupAndRestore)] + backups


def fit(model: nnx.Module, train_data, *, epochs: int, loss: str | Loss, optimizer: str | optax.GradientTransformation,
        metrics: Sequence[str | Metric | Callable] = (), validation_data=None, callbacks: Sequence[Callback] = (),
        seed: int = 0, batch_size: int = 32, shuffle: bool = True, resume_from: str | os.PathLike | None = None,
        verbose: int = 1, mesh: jax.sharding.Mesh | None = None, augment: Callable | None = None,
        objective: Objective | None = None) -> History:
    """Train ``model`` in place, like ``keras.Model.fit``.

    ``train_data``/``validation_data``: a tuple ``(x, y)`` of arrays, batched by
    ``batch_size`` and (training only) shuffled each epoch in an order fixed by
    ``(seed, epoch)``; or a re-iterable of ``(x, y)`` batches (``set_epoch(epoch)`` is called
    when present). Dropout and augmentation draw from keys fixed by ``(seed, step)``.
    ``resume_from`` continues from a checkpoint (``ModelCheckpoint``/``BackupAndRestore``
    directory); an existing ``BackupAndRestore`` backup takes precedence, being newer.
    ``optimizer``: an optax transformation, or a Keras name (``"adam"``, ``"rmsprop"``,
    ``"sgd"``) for [jaxvision.optimizers][jaxvision.optimizers]' Keras-exact optimizer with Keras's defaults.
    A non-finite loss raises ``FloatingPointError`` naming the epoch and step.
    A partial last batch has its own shape, so the train step compiles twice, as in Keras.

    ``mesh`` (default: every device, axis ``"data"``; see ``jaxvision.train.sharding``)
    splits each batch over its ``"data"`` axis, so ``batch_size`` (the global batch) must be
    a multiple of that axis's size. With several processes (``jax.distributed``) every
    process calls ``fit`` with the same arguments: arrays are the whole data set (each
    process uploads only its devices' rows), an iterable yields this process's part of each
    global batch; only process 0 prints.
    ``augment(x, y, key) -> (x, y)`` (e.g. ``AugmentBatch(...).apply_pair``) transforms each
    training batch inside the jitted step, on the devices, with a key fixed by (seed, step).

    The loss minimised and reported is Keras's: ``loss`` averaged to a scalar (a per-sample
    result of shape ``(N,)`` or ``(N, H, W)`` is averaged, as Keras's "sum_over_batch_size"),
    plus the model's auxiliary losses (``kernel_regularizer``, ``activity_regularizer``,
    ``Layer.add_loss``), in training and validation alike.
    ``objective(model, x, y, key) -> (loss, y_pred)``: your own training objective (Keras's
    ``train_step`` override) — a gradient penalty, an auxiliary loss on activations
    (``model.intermediates``), anything computed from the train-mode model; ``key`` is fixed
    by (seed, step); differentiate the model inside it with ``nnx.grad`` (a layer that updates
    state, such as BatchNormalization, cannot be called under a bare ``jax.grad`` there).
    The auxiliary losses are added to its loss, metrics see its ``y_pred``,
    and callbacks, checkpoints, resume and the mesh work as with ``loss``; validation and
    [evaluate][jaxvision.train.evaluate] still score ``loss`` (Keras's default ``test_step``).
    """
    loss_fn, metric_objs, where = get_loss(loss), _metrics(metrics), placement(mesh)
    optimizer = get_optimizer(optimizer)
    train = as_source(train_data, batch_size, where, what="train_data")
    val = None if validation_data is None else as_source(validation_data, batch_size, where, what="validation_data")
    steps_per_epoch = len(train) if isinstance(train, ArraySource) or train.has_len() else None
    progress = Progress(verbose if is_main_process() else 0, epochs, steps_per_epoch)
    progress.message(f"Training on {where.describe()}")
    trainer = Trainer(model, loss=loss_fn, metrics=metric_objs, optimizer=optimizer, seed=seed, epochs=epochs,
                      progress=progress, placement=where, callbacks=_ordered(callbacks), augment=augment,
                      objective=objective)
    for callback in trainer.callbacks:
        callback.on_train_begin(trainer)
    backups = [c.backup_dir for c in trainer.callbacks
               if isinstance(c, BackupAndRestore) and checkpoint.has_checkpoint(c.backup_dir)]
    if backups or resume_from is not None:
        source = backups[0] if backups else resume_from
        trainer.resume(checkpoint.load(source, trainer.placement), source)
        # A backup of this run that a callback stopped has finished training; an explicit
        # resume_from is a request to train on.
        trainer.stop_training = trainer.stop_training and bool(backups)
        progress.message(f"Resuming from {source} after epoch {trainer.epoch}")
    last = trainer.epoch if trainer.stop_training else epochs
    logs: dict[str, float] = {}
    try:
        for epoch in range(trainer.epoch, last):
            for callback in trainer.callbacks:
                callback.on_epoch_begin(epoch, trainer)
            start = time.perf_counter()
            logs, examples, train_seconds = trainer.train_epoch(train, epoch, shuffle=shuffle)
            if val is not None:
                logs.update({f"val_{name}": value for name, value in trainer.evaluate(val).items()})
            trainer.epoch = epoch + 1
            trainer.history.append(epoch, logs)
            progress.end_epoch(epoch, logs, time.perf_counter() - start, examples / max(train_seconds, 1e-9))
            for callback in trainer.callbacks:
                callback.on_epoch_end(epoch, logs, trainer)
            if trainer.stop_training:
                break
        for callback in trainer.callbacks:
            callback.on_train_end(logs, trainer)
    finally:
        trainer.write_back()
    return trainer.history


def evaluate(model: nnx.Module, data, *, loss: str | Loss, metrics: Sequence[str | Metric | Callable] = (),
             batch_size: int = 32, mesh: jax.sharding.Mesh | None = None) -> dict[str, float]:
    """Loss and metrics of ``model`` (in eval mode) over ``data``, averaged like Keras.

    ``data`` is a tuple ``(x, y)`` of arrays or an iterable of ``(x, y)`` batches. Batches
    are split over ``mesh`` like in [fit][jaxvision.train.fit]; a partial last batch is padded and the
    padding masked, so every example counts exactly once.
    """
    metric_objs, where = _metrics(metrics), placement(mesh)
    source = as_source(data, batch_size, where, what="data", once=True)
    train_graphdef, eval_graphdef, *arrays = split(model)
    params, rngs, state = where.replicate(arrays)  # placed as in fit, so compilations are shared
    steps = get_steps(train_graphdef, eval_graphdef, get_loss(loss), metric_objs, None, (), where)
    sums = where.replicate(init_sums(metric_objs))
    for _, run in source.eval_calls(steps):
        sums = run(params, state, rngs, sums)
    return fetch(results(sums, metric_objs))


def predict(model: nnx.Module, x: np.ndarray | Iterable, *, batch_size: int = 32,
            mesh: jax.sharding.Mesh | None = None) -> np.ndarray:
    """``model``'s outputs in eval mode (Dropout off, BatchNorm on moving statistics),
    without changing the model. ``x``: an array, or an iterable of batches (``x`` or ``(x, y)``).
    Batches are split over ``mesh`` like in [fit][jaxvision.train.fit]; a partial one is padded and the
    padding's outputs dropped. With several processes, an array's outputs all reach every
    process, an iterable's each process's own batches' outputs."""
    where = placement(mesh)
    train_graphdef, eval_graphdef, *arrays = split(model)
    params, rngs, state = where.replicate(arrays)
    steps = get_steps(train_graphdef, eval_graphdef, None, (), None, (), where)
    if hasattr(x, "shape"):
        if len(x) == 0:
            raise ValueError("predict: x has no examples")
        where.check_batch_size(batch_size, what="predict")
        size = min(batch_size, where.padded(len(x)))
        uploads = ((min(size, len(x) - start), where.rows(x, pad_index(start, size, len(x))[0], where.batched))
                   for start in range(0, len(x), size))
    else:
        batches = (np.asarray(b[0] if isinstance(b, (tuple, list)) else b) for b in x)
        local_devices = where.devices // jax.process_count()
        uploads = ((len(b), where.local_batch(pad_rows(b, -(-len(b) // local_devices) * local_devices), what="predict"))
                   for b in batches)
    # All dispatched (uploads kept ahead), then fetched.
    outputs = [(real, steps.predict_batch(params, state, rngs, batch)) for real, batch in prefetch(uploads)]
    if not outputs:
        raise ValueError("predict: no input batches")
    # Arrays: every process gets every output; iterables: each its own batches' outputs.
    fetch_rows = where.to_host if hasattr(x, "shape") else local_rows
    return np.concatenate([fetch_rows(out)[:real] for real, out in outputs])
