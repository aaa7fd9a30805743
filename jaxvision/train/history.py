"""The per-epoch logs that ``fit`` returns."""

from collections.abc import Sequence


class History:
    """Per-epoch logs, like ``keras.callbacks.History``: ``history["val_loss"][i]`` belongs to
    epoch ``epoch[i]`` (0-based).

    Examples:
        >>> history = History()
        >>> history.append(0, {"loss": 0.5})
        >>> history.history, history.epoch
        ({'loss': [0.5]}, [0])
    """

    def __init__(self, history: dict[str, list[float]] | None = None, epoch: Sequence[int] = ()):
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: list[int] = list(epoch)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
