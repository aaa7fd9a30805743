"""A segmenter segments: trained briefly on shapes at random positions, a small model of the
book's encoder/decoder shape predicts masks that follow each shape, far above the constant
mask (the training set's mean mask), and the same criterion rejects a model that predicts
one blob for every image. Also the baseline itself, on masks where its answer is known."""

import numpy as np
import pytest
from flax import nnx

from jaxvision.layers import Conv2D, Conv2DTranspose, Rescaling
from jaxvision.models import Sequential
from jaxvision.optimizers import Adam
from jaxvision.train import IoU, class_iou, constant_mask_baseline, fit, predict

SIZE = 32


def shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (count, 32, 32, 3) in [0, 255]: one bright square or disk at a random place on
    dark noise; masks: class 0 on the shape, 1 elsewhere."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    images = rng.uniform(0, 90, size=(count, SIZE, SIZE, 3))
    masks = np.ones((count, SIZE, SIZE), np.int32)
    for i in range(count):
        radius = rng.integers(4, 8)
        r, c = rng.integers(radius, SIZE - radius, size=2)
        inside = (np.maximum(abs(rows - r), abs(cols - c)) <= radius if i % 2
                  else (rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2)
        images[i][inside] = rng.uniform(150, 255, size=3)
        masks[i][inside] = 0
    return images.astype(np.float32), masks


def follows_the_shapes(y_true: np.ndarray, y_pred: np.ndarray, baseline_iou: float) -> bool:
    """The criterion: foreground IoU well above the constant mask's, and most images' own IoU ≥ 0.5."""
    per_image = [class_iou(t, p, 0) for t, p in zip(y_true, y_pred, strict=True)]
    return class_iou(y_true, y_pred, 0) >= baseline_iou + 0.3 and np.mean(np.array(per_image) >= 0.5) >= 0.9


@pytest.fixture(scope="module")
def shape_data():
    train, val, test = shapes(192, 0), shapes(32, 1), shapes(32, 2)
    return train, val, test, constant_mask_baseline(train[1], val[1])


def test_a_briefly_trained_segmenter_follows_the_shapes_and_a_blob_does_not(shape_data):
    train, _, test, baseline = shape_data
    rngs = nnx.Rngs(0)
    model = Sequential([Rescaling(1 / 255), Conv2D(3, 16, 3, strides=2, padding="same", activation="relu", rngs=rngs),
                        Conv2D(16, 16, 3, padding="same", activation="relu", rngs=rngs),
                        Conv2DTranspose(16, 16, 3, strides=2, padding="same", activation="relu", rngs=rngs),
                        Conv2D(16, 2, 3, padding="same", activation="softmax", rngs=rngs)])
    fit(model, train, epochs=6, batch_size=16, loss="sparse_categorical_crossentropy", optimizer=Adam(1e-2),
        metrics=[IoU(num_classes=2, target_class_ids=(0,), sparse_y_pred=False)], verbose=0)
    masks = np.asarray(predict(model, test[0], batch_size=32)).argmax(-1)
    baseline_iou = baseline.score(test[1])
    assert baseline_iou < 0.3  # shapes anywhere: the mean mask is a faint, wide blob
    assert class_iou(test[1], masks, 0) > 0.8
    assert follows_the_shapes(test[1], masks, baseline_iou)
    # A model that ignores the image — the best constant mask, or the model's own mean mask — fails.
    assert not follows_the_shapes(test[1], baseline.predict(len(test[1])), baseline_iou)
    blob = np.broadcast_to(np.where(masks.mean(0) < 0.5, 0, 1), masks.shape)
    assert not follows_the_shapes(test[1], blob, baseline_iou)


def test_the_constant_mask_baseline_picks_the_validation_threshold():
    # Pixel 0 is foreground in all 4 training masks, pixel 1 in 3, pixel 2 in 1, pixel 3 never.
    train = np.array([[0, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1]])[:, None, :]
    baseline = constant_mask_baseline(train, np.array([[[0, 0, 1, 1]]]), steps=20)
    np.testing.assert_allclose(baseline.frequency, [[1.0, 0.75, 0.25, 0.0]])
    # Thresholds in (0.25, 0.75] give the mask [0, 0, 1, 1], the validation mask itself; the first is kept.
    assert baseline.threshold == pytest.approx(0.3) and baseline.val_iou == 1.0
    assert baseline.mask.tolist() == [[0, 0, 1, 1]]
    assert baseline.score(np.array([[[0, 1, 1, 1]], [[1, 1, 1, 1]]])) == pytest.approx(1 / 4)  # 1 of 4 pixels
    with pytest.raises(ValueError, match="constant_mask_baseline: expected"):
        constant_mask_baseline(train, np.zeros((1, 2, 4)))
