"""Training curves (DLwP listing 8.16) and segmentation previews, written as PNG files.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so
nothing needs a display and pyplot's global state is left alone.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from jaxvision.train.history import History
from jaxvision.train.sharding import is_main_process


def history_figures(history: History | dict[str, list[float]],
                    metrics: Sequence[str] = ("accuracy",)) -> dict[str, Figure]:
    """One figure per metric and one for the loss: training dashed red, validation solid blue."""
    logs = history.history if isinstance(history, History) else history
    figures = {}
    for name in (*metrics, "loss"):
        if name not in logs:
            raise ValueError(f"plot_history: no {name!r} in the history (keys: {sorted(logs)})")
        figure = Figure(figsize=(6, 4))
        axes = figure.add_subplot()
        epochs = range(1, len(logs[name]) + 1)
        label = name.replace("_", " ")
        axes.plot(epochs, logs[name], "r--", label=f"Training {label}")
        if f"val_{name}" in logs:
            axes.plot(epochs, logs[f"val_{name}"], "b", label=f"Validation {label}")
        axes.set_title(f"Training and validation {label}")
        axes.set_xlabel("Epochs")
        axes.set_ylabel(label.capitalize())
        axes.legend()
        figures[name] = figure
    return figures


def plot_history(history: History | dict[str, list[float]], path: str | os.PathLike,
                 metrics: Sequence[str] = ("accuracy",)) -> list[Path]:
    """Save the curves of each metric and of the loss as ``<path stem>_<name>.png`` next to
    ``path``; returns the paths (metrics first, loss last). Only process 0 writes them."""
    path = Path(path)
    written = []
    for name, figure in history_figures(history, metrics).items():
        target = path.with_name(f"{path.stem}_{name}.png")
        if is_main_process():
            path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(target, dpi=100)
        written.append(target)
    return written


def save_image_grid(images: Sequence[np.ndarray], path: str | os.PathLike, *, titles: Sequence[str] | None = None,
                    columns: int = 3) -> Path:
    """The book's ``plt.subplot`` grids (figures 8.8 and 8.10): images in rows of ``columns``,
    each titled, axes off. Images are [0, 255] (or [0, 1]) RGB, or 2-D (drawn in grey). Only
    process 0 writes it.

    Examples:
        >>> import numpy as np, tempfile, pathlib
        >>> path = save_image_grid([np.zeros((8, 8, 3))] * 4, pathlib.Path(tempfile.mkdtemp()) / "g.png",
        ...                        titles=["a", "b", "c", "d"], columns=2)
        >>> path.suffix
        '.png'
    """
    images = [np.asarray(image, np.float32) for image in images]
    if not images or titles is not None and len(titles) != len(images):
        raise ValueError(f"save_image_grid: {len(images)} images and {None if titles is None else len(titles)} titles")
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(3 * columns, 3 * rows + 0.3 * (titles is not None)))
    for i, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, i + 1)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim == 3:
            axes.imshow(np.clip(image / 255.0 if image.max() > 1.0 else image, 0, 1))
        else:
            axes.imshow(image, cmap="gray")
        if titles is not None:
            axes.set_title(titles[i])
        axes.axis("off")
    figure.tight_layout()
    path = Path(path)
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
    return path


def save_mask_grid(images: np.ndarray, masks: np.ndarray, predictions: np.ndarray,
                   path: str | os.PathLike, *, baseline: np.ndarray | None = None,
                   titles: Sequence[str] = ()) -> Path:
    """One row per example: the image, its true mask and the predicted mask (the arg-max of
    ``predictions`` when they carry a class axis, as softmax outputs do), then, given a
    ``baseline`` class map (H, W), that constant mask (the same in every row). ``titles``: one
    per row, appended to the prediction's title (e.g. its IoU). Only process 0 writes it."""
    images, masks, predictions = np.asarray(images), np.asarray(masks), np.asarray(predictions)
    masks = masks[..., 0] if masks.ndim == 4 else masks
    if predictions.ndim == 4 and predictions.shape[-1] > 1:
        predictions = predictions.argmax(-1)
    predictions = predictions.reshape(masks.shape)
    mask_style = {"cmap": "viridis", "vmin": 0, "vmax": max(int(masks.max()), int(predictions.max()), 1)}
    columns = 3 if baseline is None else 4
    figure = Figure(figsize=(3 * columns, 3 * len(images)))
    for row, (image, mask, predicted) in enumerate(zip(images, masks, predictions, strict=True)):
        image = image.astype(np.float32)
        image = image / 255.0 if image.max() > 1.0 else image  # imshow wants [0, 1] floats
        image = image[..., 0] if image.shape[-1] == 1 else image
        panels = [("Image", image, {"cmap": "gray"}), ("True mask", mask, mask_style),
                  ("Predicted mask" + (f", {titles[row]}" if row < len(titles) else ""), predicted, mask_style)]
        if baseline is not None:
            panels.append(("Constant baseline", np.asarray(baseline), mask_style))
        for col, (title, panel, style) in enumerate(panels):
            axes = figure.add_subplot(len(images), columns, columns * row + col + 1)
            axes.imshow(panel, **style)
            axes.set_title(title)
            axes.axis("off")
    path = Path(path)
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
    return path
