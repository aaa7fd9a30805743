"""Keras-like callbacks: ``ModelCheckpoint``, ``EarlyStopping`` and ``BackupAndRestore``.

A callback overrides any of the hooks below; ``trainer`` (a
[jaxvision.train.trainer.Trainer][jaxvision.train.trainer.Trainer]) gives the model, the epoch, the history, the
weights (``get_weights``/``set_weights``) and ``stop_training``. State returned by
``get_state`` (JSON values) and ``get_arrays`` (arrays) is stored in checkpoints, so a
resumed run also resumes its callbacks (e.g. the best ``val_loss`` and the weights of that
epoch).
"""

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from jaxvision.train import checkpoint
from jaxvision.train.sharding import is_main_process, sync
from jaxvision.train.trainer import Trainer

_HIGHER_IS_BETTER = ("acc", "iou", "auc", "precision", "recall", "f1")


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_epoch_begin(self, epoch: int, trainer: Trainer) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None: ...

    def on_train_end(self, logs: dict[str, float], trainer: Trainer) -> None: ...

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None: ...

    def get_arrays(self) -> dict[str, Any]:
        return {}

    def set_arrays(self, arrays: dict[str, Any]) -> None: ...


def monitor_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` infers it from the name like Keras (losses go down,
    accuracies and IoUs go up).

    Examples:
        >>> monitor_mode("val_loss", "auto"), monitor_mode("val_foreground_iou", "auto")
        ('min', 'max')
    """
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    name = monitor.removeprefix("val_").lower()
    if name.endswith("loss"):
        return "min"
    if any(word in name for word in _HIGHER_IS_BETTER):
        return "max"
    raise ValueError(f"cannot tell whether {monitor!r} should go up or down; pass mode='min' or mode='max'")


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float):
        self.monitor, self.mode = monitor, monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best: float | None = None

    def improved(self, current: float, reference: float | None) -> bool:
        # Keras: monitor_op(current - min_delta, reference), min_delta negated when minimising.
        if reference is None:
            return True
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def current(self, logs: dict[str, float]) -> float | None:
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: {self.monitor!r} is not in the logs (available: "
                          f"{', '.join(logs)})", stacklevel=3)
        return value


class ModelCheckpoint(_Monitor):
    """Save the full training state to the directory ``filepath`` at the end of every epoch,
    or with ``save_best_only`` only when ``monitor`` improved (Keras's arguments and defaults).
    ``load_model(filepath)`` or ``restore(filepath, model)`` read it back, and
    ``fit(..., resume_from=filepath)`` continues from it."""

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto"):
        super().__init__(monitor, mode, 0.0)
        self.filepath, self.save_best_only, self.verbose = Path(filepath), save_best_only, verbose

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        if self.save_best_only:
            current = self.current(logs)
            if current is not None:  # like Keras, a missing monitor warns and saves anyway
                if not self.improved(current, self.best):
                    return
                if self.verbose:
                    best = "None" if self.best is None else f"{self.best:.5f}"
                    trainer.progress.message(f"Epoch {epoch + 1}: {self.monitor} improved from {best} to "
                                             f"{current:.5f}, saving to {self.filepath}")
                self.best = current
        checkpoint.save(self.filepath, trainer.checkpoint_state())

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights`` the model ends with the weights of the best epoch.
    Keras semantics, including ``baseline``."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.baseline, self.verbose = baseline, verbose
        self.on_train_begin(None)

    def on_train_begin(self, trainer: Trainer | None) -> None:
        self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        current = self.current(logs)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = trainer.get_weights(), epoch
        self.wait += 1
        if self.improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.get_weights()
            if self.baseline is None or self.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, logs: dict[str, float], trainer: Trainer) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            trainer.progress.message(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                trainer.progress.message("Restoring model weights from the end of the best epoch: "
                                         f"{self.best_epoch + 1}.")
            trainer.set_weights(self.best_weights)

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]

    def get_arrays(self) -> dict[str, Any]:
        return {} if self.best_weights is None else {"best_weights": self.best_weights}

    def set_arrays(self, arrays: dict[str, Any]) -> None:
        self.best_weights = arrays.get("best_weights")


class BackupAndRestore(Callback):
    """Back up the full training state to ``backup_dir`` after every epoch; when ``fit``
    starts and a backup exists, it resumes from it (Keras's fault tolerance). The backup is
    deleted when training finishes, unless ``delete_checkpoint=False``. It runs after the
    other callbacks, so the backup includes their end-of-epoch state."""

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True):
        self.backup_dir, self.delete_checkpoint = Path(backup_dir), delete_checkpoint

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        checkpoint.save(self.backup_dir, trainer.checkpoint_state())

    def on_train_end(self, logs: dict[str, float], trainer: Trainer) -> None:
        sync("backup_and_restore.end")  # every process is done with the backup
        if self.delete_checkpoint and is_main_process() and self.backup_dir.exists():
            shutil.rmtree(self.backup_dir)
