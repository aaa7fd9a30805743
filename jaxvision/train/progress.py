"""Console output of ``fit``: a live bar within an epoch (terminals only) and one line per epoch.

``verbose=0`` prints nothing, ``1`` the bar and the epoch lines, ``2`` only the epoch lines
(as in Keras). The bar is redrawn in place with a carriage return at most
``1 / MIN_INTERVAL_S`` times a second; each redraw reads the running sums from the device, so
it is the only host-device synchronisation inside an epoch.
"""

import sys
import time
from typing import TextIO


MIN_INTERVAL_S = 0.1
BAR_WIDTH = 24


def format_logs(logs: dict[str, float]) -> str:
    """``loss: 0.6931 - accuracy: 0.5000`` in the given order."""
    return " - ".join(f"{name}: {value:.4f}" for name, value in logs.items())


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], seconds: float, images_per_second: float) -> str:
    """The summary printed after each epoch.

    Examples:
        >>> epoch_line(0, 5, {"loss": 0.5, "val_loss": 0.25}, seconds=2.04, images_per_second=1234.4)
        'Epoch 1/5 - 2.0s - 1234 img/s - loss: 0.5000 - val_loss: 0.2500'
    """
    return f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {images_per_second:.0f} img/s - {format_logs(logs)}"


class Progress:
    """Draws the bar of the current epoch and prints the epoch lines."""

    def __init__(self, verbose: int, epochs: int, steps: int | None, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.live = verbose == 1 and self.stream.isatty()
        self._last = 0.0
        self._drawn = 0

    def due(self) -> bool:
        """Whether a redraw (and therefore a device sync) is wanted now."""
        return self.live and time.perf_counter() - self._last >= MIN_INTERVAL_S

    def draw(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        self._last = time.perf_counter()
        if self.steps:
            done = BAR_WIDTH * step // self.steps
            bar = f"{step}/{self.steps} [{'=' * done}{'>' if done < BAR_WIDTH else ''}{'.' * (BAR_WIDTH - done - 1)}]"
        else:
            bar = f"{step}"
        text = f"Epoch {epoch + 1}/{self.epochs} {bar} - {format_logs(logs)}"
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def end_epoch(self, epoch: int, logs: dict[str, float], seconds: float, images_per_second: float) -> None:
        if self.verbose == 0:
            return
        line = epoch_line(epoch, self.epochs, logs, seconds, images_per_second)
        prefix = "\r" if self._drawn else ""
        self.stream.write(prefix + line.ljust(self._drawn) + "\n")
        self.stream.flush()
        self._drawn = 0

    def message(self, text: str) -> None:
        """A line from a callback (e.g. early stopping), kept apart from the bar."""
        if self.verbose == 0:
            return
        if self._drawn:
            self.stream.write("\n")
            self._drawn = 0
        self.stream.write(text + "\n")
        self.stream.flush()
