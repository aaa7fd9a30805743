"""The book's Segment Anything drawings on a matplotlib ``Axes``: a mask tinted over the
image, point prompts as stars (green foreground, red background) and a box prompt.

Examples:
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> show_mask(np.eye(4, dtype=bool), ax)
    >>> show_points(np.array([[1, 2], [3, 0]]), np.array([1, 0]), ax)
    >>> show_box(np.array([0, 0, 3, 2]), ax)
    >>> len(ax.images), len(ax.collections), len(ax.patches)
    (1, 2, 1)
"""

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

MASK_COLOR = (30 / 255, 144 / 255, 1.0, 0.6)  # translucent blue, as in the book and the reference notebooks


def mask_overlay(mask: np.ndarray, color: tuple[float, float, float, float] = MASK_COLOR) -> np.ndarray:
    """A boolean ``(H, W)`` mask as an RGBA float image: ``color`` inside, transparent outside.

    Examples:
        >>> mask_overlay(np.array([[True, False]]))[0].tolist()
        [[0.11764705882352941, 0.5647058823529412, 1.0, 0.6], [0.0, 0.0, 0.0, 0.0]]
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask_overlay: expected an (H, W) mask, got shape {mask.shape}")
    return mask.astype(bool)[..., None] * np.asarray(color, dtype=np.float64)


def show_mask(mask: np.ndarray, ax: Axes, color: tuple[float, float, float, float] = MASK_COLOR) -> None:
    """Draw a boolean ``(H, W)`` mask (a leading axis of 1 is dropped) over what ``ax`` shows."""
    mask = np.asarray(mask)
    ax.imshow(mask_overlay(mask.reshape(mask.shape[-2:]) if mask.ndim == 3 and mask.shape[0] == 1 else mask, color))


def show_points(coords: np.ndarray, labels: np.ndarray, ax: Axes, marker_size: float = 375) -> None:
    """Draw ``(N, 2)`` x/y points: label 1 as green stars, label 0 as red stars."""
    coords, labels = np.asarray(coords, dtype=np.float64).reshape(-1, 2), np.asarray(labels).reshape(-1)
    if len(coords) != len(labels):
        raise ValueError(f"show_points: {len(coords)} points but {len(labels)} labels")
    for label, color in ((1, "green"), (0, "red")):
        chosen = coords[labels == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], color=color, marker="*", s=marker_size, edgecolor="white",
                   linewidth=1.25)


def show_box(box: np.ndarray, ax: Axes) -> None:
    """Draw an x0, y0, x1, y1 box as a green rectangle."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor="green", facecolor=(0, 0, 0, 0), lw=2))
