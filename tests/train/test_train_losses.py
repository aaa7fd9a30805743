"""Losses against Keras 3's on the same inputs, including probabilities of exactly 0 and 1."""

import numpy as np
import pytest

from jaxvision.train import losses

RNG = np.random.default_rng(0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def saturated_probabilities(shape: tuple[int, ...]) -> np.ndarray:
    """Softmax outputs where some rows are exactly one-hot (0s and a 1): Keras clips them."""
    p = softmax(RNG.normal(size=shape) * 3)
    p.reshape(-1, shape[-1])[:3] = np.eye(shape[-1], dtype=np.float32)[[0, 1, 0]]
    return p


@pytest.mark.parametrize("label_shape", ["flat", "trailing_one"])
def test_sparse_categorical_crossentropy_matches_keras(keras, label_shape):
    y_pred = saturated_probabilities((6, 3))
    y_true = np.array([0, 1, 1, 2, 0, 2], np.int32)  # rows 1 and 2 are confidently wrong / right
    if label_shape == "trailing_one":
        y_true = y_true[:, None]
    expected = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y_true, y_pred), expected, rtol=1e-6)
    # A one-hot-wrong row costs -log(1e-7): the clip, not infinity.
    assert np.isfinite(float(losses.sparse_categorical_crossentropy(y_true, y_pred)))


def test_sparse_categorical_crossentropy_per_pixel_matches_keras(keras):
    y_pred = saturated_probabilities((2, 5, 4, 3))
    y_true = RNG.integers(0, 3, size=(2, 5, 4)).astype(np.int32)
    expected = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y_true, y_pred), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y_true[..., None], y_pred), expected, rtol=1e-6)


def test_sparse_categorical_crossentropy_from_logits_matches_keras(keras):
    logits = (RNG.normal(size=(5, 4)) * 4).astype(np.float32)
    y_true = RNG.integers(0, 4, size=5).astype(np.int32)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, logits)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True),
                               expected, rtol=1e-6)


def test_categorical_crossentropy_matches_keras(keras):
    y_pred = saturated_probabilities((6, 3))
    y_true = np.eye(3, dtype=np.float32)[[0, 1, 1, 2, 0, 2]]
    expected = keras.losses.CategoricalCrossentropy()(y_true, y_pred)
    np.testing.assert_allclose(losses.categorical_crossentropy(y_true, y_pred), expected, rtol=1e-6)


@pytest.mark.parametrize("label_rank", [1, 2])
def test_binary_crossentropy_matches_keras_with_exact_zeros_and_ones(keras, label_rank):
    y_pred = np.array([[0.0], [1.0], [1.0], [0.0], [0.3], [0.999]], np.float32)  # includes confidently wrong
    y_true = np.array([0, 1, 0, 1, 1, 0], np.float32)
    y_true = y_true if label_rank == 1 else y_true[:, None]
    expected = keras.losses.BinaryCrossentropy()(y_true, y_pred)
    np.testing.assert_allclose(losses.binary_crossentropy(y_true, y_pred), expected, rtol=1e-6)
    # By hand: the two confidently wrong predictions cost about -log(1e-7), not infinity.
    p = np.clip(y_pred[:, 0], np.float32(1e-7), np.float32(1 - 1e-7))
    t = y_true.reshape(-1)
    by_hand = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    np.testing.assert_allclose(losses.binary_crossentropy(y_true, y_pred), by_hand, rtol=1e-6)
    assert 15.9 < -np.log(1 - p[2]) < 16.2 and np.isfinite(by_hand)


def test_binary_crossentropy_per_pixel_and_from_logits_match_keras(keras):
    y_true = RNG.integers(0, 2, size=(2, 4, 4, 1)).astype(np.float32)
    logits = (RNG.normal(size=(2, 4, 4, 1)) * 5).astype(np.float32)
    expected = keras.losses.BinaryCrossentropy(from_logits=True)(y_true, logits)
    np.testing.assert_allclose(losses.binary_crossentropy_from_logits(y_true, logits), expected, rtol=1e-6)
    probabilities = 1 / (1 + np.exp(-logits))
    expected = keras.losses.BinaryCrossentropy()(y_true, probabilities)
    np.testing.assert_allclose(losses.binary_crossentropy(y_true, probabilities), expected, rtol=1e-6)


def test_loss_lookup_and_shape_errors():
    assert losses.get_loss("binary_crossentropy") is losses.binary_crossentropy
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        losses.get_loss("mse")
    with pytest.raises(ValueError, match=r"labels of shape \(4,\) need outputs of shape"):
        losses.sparse_categorical_crossentropy(np.zeros(4, np.int32), np.ones((3, 2), np.float32))
