"""Training curves and mask grids are written as real PNG files."""

import numpy as np

from jaxvision.train import History, history_figures, plot_history, save_mask_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_history() -> History:
    history = History()
    for epoch in range(4):
        history.append(epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + 0.1 * epoch,
                               "val_loss": 1.2 / (epoch + 1), "val_accuracy": 0.45 + 0.1 * epoch})
    return history


def test_plot_history_writes_one_png_per_metric_and_for_the_loss(tmp_path):
    paths = plot_history(make_history(), tmp_path / "run" / "curves.png", metrics=("accuracy",))
    assert [p.name for p in paths] == ["curves_accuracy.png", "curves_loss.png"]
    for path in paths:
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 1000


def test_history_figures_draw_training_dashed_and_validation_solid():
    figures = history_figures(make_history(), metrics=("accuracy",))
    assert list(figures) == ["accuracy", "loss"]
    training, validation = figures["accuracy"].axes[0].lines
    assert (training.get_linestyle(), validation.get_linestyle()) == ("--", "-")
    np.testing.assert_allclose(training.get_ydata(), [0.5, 0.6, 0.7, 0.8])
    np.testing.assert_array_equal(validation.get_xdata(), [1, 2, 3, 4])
    # Without validation logs, a single (training) curve.
    only_training = {"loss": [0.5, 0.25]}
    assert len(history_figures(only_training, metrics=()).get("loss").axes[0].lines) == 1


def test_save_mask_grid_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 8, 8, 3)).astype(np.float32)
    masks = rng.integers(0, 3, size=(2, 8, 8, 1))
    predictions = rng.random(size=(2, 8, 8, 3)).astype(np.float32)
    path = save_mask_grid(images, masks, predictions, tmp_path / "grid.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_save_mask_grid_draws_the_constant_baseline_in_a_fourth_column(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images, masks = rng.integers(0, 256, size=(2, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, size=(2, 8, 8))
    predictions = rng.integers(0, 3, size=(2, 8, 8))
    plain = save_mask_grid(images, masks, predictions, tmp_path / "plain.png")
    with_baseline = save_mask_grid(images, masks, predictions, tmp_path / "baseline.png", baseline=masks[0],
                                   titles=["IoU 0.50", "IoU 0.25"])
    with Image.open(plain) as a, Image.open(with_baseline) as b:
        assert (a.size, b.size) == ((3 * 3 * 80, 2 * 3 * 80), (4 * 3 * 80, 2 * 3 * 80))  # 3-inch panels at 80 dpi
