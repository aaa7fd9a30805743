"""Training logs where users look: Keras's ``CSVLogger`` and ``TensorBoard`` callbacks.

Both write on process 0 only, from the run's history, so a run resumed from a backup logs each epoch once:
the CSV file is rewritten from the history, and TensorBoard's event files get a purge marker
at the resumed epoch (TensorBoard then hides what a killed run logged after its backup).
TensorBoard event files are written by ``tensorboardX`` (``pip install 'jaxvision[tensorboard]'``),
no TensorFlow needed.
"""

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxvision.train.callbacks import Callback
from jaxvision.train.history import History
from jaxvision.train.sharding import is_main_process
from jaxvision.train.trainer import Trainer


class CSVLogger(Callback):
    """Stream epoch results to a CSV file, as ``keras.callbacks.CSVLogger`` writes it: an
    ``epoch`` column then the logs' keys sorted (``val_*`` columns of ``NA`` when there is no
    validation data), Excel dialect with ``separator``.

    Args:
        filename: the CSV file, e.g. ``runs/x/log.csv``.
        separator: the field separator.
        append: add to an existing file (without a second header) instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.start, self.header = 0, True

    def on_train_begin(self, trainer: Trainer) -> None:
        # Where this run's rows begin; a resumed run gets these back from its checkpoint.
        self.start = self.filename.stat().st_size if self.append and self.filename.is_file() else 0
        self.header = self.start == 0
        self._write(trainer.history)

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        self._write(trainer.history)

    def on_train_end(self, logs: dict[str, float], trainer: Trainer) -> None:
        self._write(trainer.history)  # a run resumed after its last epoch has nothing else to log

    def get_state(self) -> dict[str, Any]:
        return {"start": self.start, "header": self.header}

    def set_state(self, state: dict[str, Any]) -> None:
        self.start, self.header = state["start"], state["header"]

    def _write(self, history: History) -> None:
        if not is_main_process():
            return
        keys = sorted(history.history)
        if keys and not any(key.startswith("val_") for key in keys):
            keys += [f"val_{key}" for key in keys]

        class Dialect(csv.excel):
            delimiter = self.separator

        self.filename.parent.mkdir(parents=True, exist_ok=True)
        with open(self.filename, "r+" if self.filename.is_file() else "w", newline="") as f:
            f.seek(self.start)
            f.truncate()
            if not history.epoch:
                return
            writer = csv.DictWriter(f, fieldnames=["epoch", *keys], dialect=Dialect)
            if self.header:
                writer.writeheader()
            for i, epoch in enumerate(history.epoch):
                writer.writerow({"epoch": epoch, **{key: values[i] if (values := history.history.get(key)) else "NA"
                                                   for key in keys}})


class TensorBoard(Callback):
    """Epoch scalars for TensorBoard, as ``keras.callbacks.TensorBoard`` logs them:
    ``epoch_<name>`` at step ``epoch`` under ``log_dir/train`` and, for ``val_<name>``, under
    ``log_dir/validation``; with ``histogram_freq`` > 0 also a histogram of every weight
    (``<layer>/<weight>/histogram``) every that many epochs.

    Args:
        log_dir: the folder TensorBoard is pointed at (``tensorboard --logdir``).
        histogram_freq: epochs between weight histograms; 0 for none.
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0):
        try:
            import tensorboardX
        except ImportError as e:
            raise ImportError("TensorBoard needs tensorboardX: pip install 'jaxvision[tensorboard]'") from e
        if histogram_freq < 0:
            raise ValueError(f"histogram_freq must be >= 0, got {histogram_freq}")
        self.log_dir, self.histogram_freq = Path(log_dir), histogram_freq
        self._summary_writer = tensorboardX.SummaryWriter
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, trainer: Trainer) -> None:
        self._writers = {}

    def _writer(self, split: str, epoch: int):
        if split not in self._writers:
            # A fit that begins after epoch 0 resumed from a checkpoint: purge what the
            # interrupted run logged from this epoch on. TensorBoard reads a folder's files
            # in name order, and names hold only the second: the suffix keeps them apart and in order.
            self._writers[split] = self._summary_writer(str(self.log_dir / split), purge_step=epoch or None,
                                                        filename_suffix=f".{time.time_ns()}")
        return self._writers[split]

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        if not is_main_process():
            return
        for name, value in logs.items():
            split, tag = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(split, epoch).add_scalar(f"epoch_{tag}", value, global_step=epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            weights = trainer.get_weights()
            for name, value in {**weights["params"], **weights["state"]}.items():
                self._writer("train", epoch).add_histogram(f"{name}/histogram", np.asarray(value.addressable_data(0)), global_step=epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, float], trainer: Trainer) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
