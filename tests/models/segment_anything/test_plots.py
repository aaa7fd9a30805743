"""The book's SAM drawings: exact colours, positions and sizes of what lands on the axes."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxvision.models.segment_anything.plots import MASK_COLOR, show_box, show_mask, show_points


def test_show_mask_tints_only_the_mask():
    ax = Figure().add_subplot()
    mask = np.zeros((1, 3, 4), bool)
    mask[0, 1, 2] = True
    show_mask(mask, ax)
    rgba = ax.images[0].get_array()
    assert rgba.shape == (3, 4, 4)
    np.testing.assert_allclose(rgba[1, 2], MASK_COLOR)
    assert np.count_nonzero(rgba[..., 3]) == 1


def test_show_points_and_box():
    ax = Figure().add_subplot()
    show_points(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([1, 0, 1]), ax)
    foreground, background = ax.collections
    np.testing.assert_array_equal(foreground.get_offsets(), [[1, 2], [5, 6]])
    np.testing.assert_array_equal(background.get_offsets(), [[3, 4]])
    np.testing.assert_allclose(foreground.get_facecolor()[0], (0, 0.5, 0, 1), atol=0.01)  # matplotlib "green"
    np.testing.assert_allclose(background.get_facecolor()[0], (1, 0, 0, 1))
    show_box(np.array([10, 20, 40, 25]), ax)
    (box,) = ax.patches
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (10, 20, 30, 5)
    with pytest.raises(ValueError, match="3 points but 2 labels"):
        show_points(np.zeros((3, 2)), np.array([1, 0]), ax)
