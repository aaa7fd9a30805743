"""Pictures of the interpretation results: activation grids (listing 10.6), stitched filter
patterns (listing 10.16) and Grad-CAM overlays (listings 10.24–10.25).

PNG files are written with Pillow pixel for pixel (no figure margins), so their sizes are
exact; only [save_titled_image][jaxvision.interpret.save_titled_image] draws a matplotlib figure, for a caption.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


def activation_grid(activation: np.ndarray, images_per_row: int = 16) -> np.ndarray:
    """Listing 10.6's grid of one image's channels as a uint8 (rows, cols) array.

    Each channel is standardised to mean 128 / std 64 and clipped to [0, 255]; all-zero
    channels stay 0. Cells are separated by 1-pixel lines of 0. Unlike the book, a last
    partial row is kept (the book drops channels beyond a multiple of ``images_per_row``).

    Args:
      activation: (H, W, C), or (N, H, W, C) of which the first image is drawn.

    Examples:
        >>> import numpy as np
        >>> activation_grid(np.ones((1, 5, 5, 20)), images_per_row=16).shape
        (11, 95)
    """
    activation = np.asarray(activation, dtype=np.float64)
    if activation.ndim == 4:
        activation = activation[0]
    if activation.ndim != 3:
        raise ValueError(f"activation_grid: expected (H, W, C) or (N, H, W, C), got shape {activation.shape}")
    height, width, channels = activation.shape
    per_row = min(images_per_row, channels)
    rows = -(-channels // per_row)
    grid = np.zeros((rows * (height + 1) - 1, per_row * (width + 1) - 1), dtype=np.uint8)
    for c in range(channels):
        image = activation[..., c]
        if image.any():
            std = image.std()
            image = (image - image.mean()) / (std if std > 0 else 1.0) * 64 + 128
        row, col = divmod(c, per_row)
        grid[row * (height + 1):row * (height + 1) + height,
             col * (width + 1):col * (width + 1) + width] = np.clip(image, 0, 255).astype(np.uint8)
    return grid


def _colorize(values: np.ndarray, cmap: str | None) -> np.ndarray:
    """uint8 values → uint8 RGB through a matplotlib colormap (``None``: grey)."""
    if cmap is None:
        return values
    return (matplotlib.colormaps[cmap](np.arange(256))[:, :3] * 255).astype(np.uint8)[values]


def plot_activation_grid(activation: np.ndarray, path: str | Path, images_per_row: int = 16,
                         cmap: str | None = "viridis") -> Path:
    """Save [activation_grid][jaxvision.interpret.activation_grid] as a PNG (viridis as in the
    book; ``cmap=None`` for grey,
    where all-zero channels are black). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_colorize(activation_grid(activation, images_per_row), cmap)).save(path)
    return path


def save_activation_grids(acts: Mapping[str, np.ndarray], out_dir: str | Path, images_per_row: int = 16,
                          cmap: str | None = "viridis") -> list[Path]:
    """One ``<layer>.png`` grid per (N, H, W, C) activation (first image); returns the paths."""
    return [plot_activation_grid(a, Path(out_dir) / f"{name}.png", images_per_row, cmap)
            for name, a in acts.items()]


def stitch_filters(images: Sequence[np.ndarray], path: str | Path, n: int = 8, margin: int = 5) -> Path:
    """Listing 10.16: an ``n`` × ``n`` grid of equal-size uint8 images with ``margin`` black
    pixels between them, saved as a PNG of side ``n * size + (n - 1) * margin``.
    Missing cells (fewer than n² images) stay black. Returns the path.

    Unlike ``keras.utils.save_img`` the pixels are saved as given, not min–max rescaled.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) > n * n or images.dtype != np.uint8:
        raise ValueError(f"stitch_filters: expected at most {n * n} uint8 (H, W[, C]) images, "
                         f"got {images.dtype} array of shape {images.shape}")
    count, height, width, channels = images.shape
    grid = np.zeros((n * height + (n - 1) * margin, n * width + (n - 1) * margin, channels), np.uint8)
    for k in range(count):
        i, j = divmod(k, n)
        top, left = i * (height + margin), j * (width + margin)
        grid[top:top + height, left:left + width] = images[k]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if channels == 1 else grid).save(path)
    return path


def save_matshow(values: np.ndarray, path: str | Path, cmap: str = "viridis", cell: int = 1) -> Path:
    """``plt.matshow(values)`` pixel for pixel: a 2-D array min–max scaled to the colormap (a
    constant array maps to its low end), each value a ``cell`` × ``cell`` square: the book's
    figure 10.2 (one channel of an activation) and its Grad-CAM heatmap. Returns the path.

    Examples:
        >>> import numpy as np, tempfile, pathlib
        >>> from PIL import Image
        >>> path = save_matshow(np.arange(6.0).reshape(2, 3), pathlib.Path(tempfile.mkdtemp()) / "m.png", cell=4)
        >>> with Image.open(path) as png:
        ...     png.size
        (12, 8)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"save_matshow: expected a 2-D array, got shape {values.shape}")
    span = values.max() - values.min()
    scaled = (values - values.min()) / (span if span > 0 else 1.0)
    colors = _colorize(np.round(scaled * 255).astype(np.uint8), cmap)
    height, width = values.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colors).resize((width * cell, height * cell), Image.Resampling.NEAREST).save(path)
    return path


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Listing 10.25: the heatmap, resized bilinearly to the image and coloured with "jet",
    added at ``alpha`` × 255 to the image ([0, 255], (H, W, 3) or (H, W, 1)); the sum is
    min–max rescaled to [0, 255] uint8 as ``keras.utils.array_to_img`` does.

    Examples:
        >>> import numpy as np
        >>> out = overlay_heatmap(np.zeros((32, 48, 3)), np.eye(4))
        >>> out.shape, out.dtype
        ((32, 48, 3), dtype('uint8'))
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"overlay_heatmap: expected an (H, W, 3) or (H, W, 1) image, got shape {image.shape}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"overlay_heatmap: expected an (h, w) heatmap, got shape {heatmap.shape}")
    size = (image.shape[1], image.shape[0])  # Pillow sizes are (width, height)
    resized = np.asarray(Image.fromarray(heatmap).resize(size, Image.Resampling.BILINEAR))
    colors = _colorize(np.uint8(np.clip(resized, 0, 1) * 255), "jet").astype(np.float32)
    blended = colors * alpha + image
    blended -= blended.min()
    if blended.max() > 0:
        blended *= 255 / blended.max()
    return blended.astype(np.uint8)


def save_titled_image(image: np.ndarray, path: str | Path, title: str, dpi: int = 100) -> Path:
    """Save a uint8 image under a caption; the figure is (W, H + 30) pixels at ``dpi``."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    fig = Figure(figsize=(width / dpi, (height + 30) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, height / (height + 30)))
    ax.imshow(image, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(title, y=1 - 4 / (height + 30), va="top", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
