"""resize_and_pad equals keras.ops.image.resize(..., pad_to_aspect_ratio=True): central padding."""

import numpy as np
import pytest

from jaxvision.models.segment_anything import resize_and_pad


@pytest.mark.parametrize("shape, size", [((100, 200, 3), (200, 200)), ((840, 1400, 3), (1024, 1024)),
                                         ((2, 301, 97, 3), (64, 48)), ((50, 50, 1), (30, 60))])
def test_equals_keras(keras, shape, size):
    image = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    expected = np.asarray(keras.ops.image.resize(image, size, pad_to_aspect_ratio=True))
    np.testing.assert_allclose(resize_and_pad(image, size), expected, rtol=1e-6, atol=1e-4)


def test_a_wide_image_is_padded_centrally():
    out = resize_and_pad(np.full((100, 200, 3), 7, np.uint8), (200, 200))
    assert out.dtype == np.float32 and out.shape == (200, 200, 3)
    rows = np.flatnonzero(out[:, 100, 0])
    assert (rows[0], rows[-1]) == (50, 149)  # rows 50-149 of 200, as the example says
    np.testing.assert_array_equal(out[50:150], 7.0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"resize_and_pad: expected an \(H, W, C\) .* got shape \(4, 4\)"):
        resize_and_pad(np.zeros((4, 4)))
