"""Metrics against hand-computed values and against Keras 3's stateful metrics."""

import warnings

import jax
import numpy as np
import pytest
from flax import nnx

from jaxvision.layers import Conv2D
from jaxvision.models import Sequential
from jaxvision.train import IoU, MeanIoU, MeanMetric, evaluate, fit
from jaxvision.train.metrics import get_metric

RNG = np.random.default_rng(1)


def run(metric, batches) -> float:
    """Accumulate over batches inside jit, as the training loop does."""
    update = jax.jit(metric.update)
    state = metric.init()
    for y_true, y_pred in batches:
        state = update(state, y_true, y_pred)
    return float(metric.result(state))


def keras_run(metric, batches) -> float:
    with warnings.catch_warnings():
        # Keras's confusion matrix asks JAX for int64 indices (truncated to int32: harmless here).
        warnings.filterwarnings("ignore", message="Explicitly requested dtype int64", category=UserWarning)
        for y_true, y_pred in batches:
            metric.update_state(y_true, y_pred)
        return float(metric.result())


def test_iou_against_a_hand_computed_confusion_matrix():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2], np.int32)
    y_pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 1], np.int32)
    # Confusion matrix (rows: labels, columns: predictions):
    #   [[2, 1, 0],      class 0: TP 2, FP 1 (a 2 predicted as 0), FN 1 → 2/4
    #    [0, 1, 1],      class 1: TP 1, FP 2, FN 1 → 1/4
    #    [1, 1, 2]]      class 2: TP 2, FP 1, FN 2 → 2/5
    metric = IoU(3, (0,))
    state = metric.update(metric.init(), y_true, y_pred)
    np.testing.assert_array_equal(metric.confusion_matrix(state), [[2, 1, 0], [0, 1, 1], [1, 1, 2]])
    assert run(IoU(3, (0,)), [(y_true, y_pred)]) == pytest.approx(0.5, rel=1e-6)
    assert run(IoU(3, (1, 2)), [(y_true, y_pred)]) == pytest.approx((0.25 + 0.4) / 2, rel=1e-6)
    assert run(MeanIoU(3), [(y_true, y_pred)]) == pytest.approx((0.5 + 0.25 + 0.4) / 3, rel=1e-6)


def test_iou_skips_absent_classes_and_ignored_labels():
    # Class 2 never appears: Keras averages over the classes with a non-zero denominator.
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert run(MeanIoU(3), [(y_true, y_pred)]) == pytest.approx(1 / 3, rel=1e-6)
    # Label 255 ("void") is ignored, as is an out-of-range label.
    y_true, y_pred = np.array([0, 255, 1, 7]), np.array([0, 1, 1, 0])
    assert run(MeanIoU(2, ignore_class=255), [(y_true, y_pred)]) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("target_class_ids", [(0,), (1, 2), (0, 1, 2)])
@pytest.mark.parametrize("sparse_y_pred", [True, False])
def test_iou_matches_keras_over_segmentation_batches(keras, target_class_ids, sparse_y_pred):
    batches = []
    for _ in range(2):  # the confusion matrix accumulates across batches
        y_true = RNG.integers(0, 3, size=(2, 6, 6)).astype(np.int32)
        scores = RNG.random(size=(2, 6, 6, 3)).astype(np.float32)
        batches.append((y_true, scores if not sparse_y_pred else scores.argmax(-1).astype(np.int32)))
    ours = run(IoU(3, target_class_ids, sparse_y_pred=sparse_y_pred, name="x"), batches)
    theirs = keras_run(keras.metrics.IoU(3, list(target_class_ids), sparse_y_pred=sparse_y_pred), batches)
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_mean_iou_matches_keras_with_one_hot_labels_and_ignore_class(keras):
    y_true = RNG.integers(0, 4, size=(3, 5, 5)).astype(np.int32)
    y_pred = RNG.random(size=(3, 5, 5, 4)).astype(np.float32)
    one_hot = np.eye(4, dtype=np.float32)[y_true]
    ours = run(MeanIoU(4, sparse_y_true=False, sparse_y_pred=False, ignore_class=3), [(one_hot, y_pred)])
    theirs = keras_run(keras.metrics.MeanIoU(4, sparse_y_true=False, sparse_y_pred=False, ignore_class=3),
                       [(one_hot, y_pred)])
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_iou_rejects_out_of_range_targets():
    with pytest.raises(ValueError, match=r"within \[0, 3\)"):
        IoU(3, (3,))


@pytest.mark.parametrize("name, keras_name, y_true, y_pred", [
    ("accuracy", "BinaryAccuracy", RNG.integers(0, 2, (8,)).astype(np.float32), RNG.random((8, 1)).astype(np.float32)),
    ("binary_accuracy", "BinaryAccuracy", RNG.integers(0, 2, (8, 1)).astype(np.float32), RNG.random((8, 1)).astype(np.float32)),
    ("accuracy", "SparseCategoricalAccuracy", RNG.integers(0, 3, (8,)), RNG.random((8, 3)).astype(np.float32)),
    ("sparse_categorical_accuracy", "SparseCategoricalAccuracy", RNG.integers(0, 3, (8, 1)), RNG.random((8, 3)).astype(np.float32)),
    ("accuracy", "SparseCategoricalAccuracy", RNG.integers(0, 3, (8, 5, 5)), RNG.random((8, 5, 5, 3)).astype(np.float32)),
    ("accuracy", "CategoricalAccuracy", np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 8)], RNG.random((8, 3)).astype(np.float32)),
])
def test_accuracies_match_keras(keras, name, keras_name, y_true, y_pred):
    metric = get_metric(name)
    assert metric.name == name
    # Two batches of unequal size: the mean is over examples, not batches.
    batches = [(y_true[:5], y_pred[:5]), (y_true[5:], y_pred[5:])]
    assert run(metric, batches) == pytest.approx(keras_run(getattr(keras.metrics, keras_name)(), batches), rel=1e-6)


def test_custom_metric_function_is_averaged_per_example():
    def absolute_error(y_true, y_pred):
        return abs(y_true - y_pred)

    metric = get_metric(absolute_error)
    assert isinstance(metric, MeanMetric) and metric.name == "absolute_error"
    y_true = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
    y_pred = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]], np.float32)
    assert run(metric, [(y_true[:1], y_pred[:1]), (y_true[1:], y_pred[1:])]) == pytest.approx((0.5 + 0 + 1.5) / 3)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        get_metric("auc")


def test_sample_weight_zero_drops_examples_like_slicing_them_off():
    # How evaluation masks the padding of a partial last batch.
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 3, size=(6, 4, 4)), rng.random((6, 4, 4, 3)).astype(np.float32)
    keep = np.array([1, 1, 0, 1, 0, 0], np.float32)
    real = keep.astype(bool)
    for metric in (get_metric("accuracy"), MeanIoU(3, sparse_y_pred=False),
                   IoU(3, (0,), sparse_y_pred=False)):
        masked = metric.result(metric.update(metric.init(), labels, scores, sample_weight=keep))
        sliced = metric.result(metric.update(metric.init(), labels[real], scores[real]))
        assert float(masked) == pytest.approx(float(sliced), rel=1e-6)
        everything = metric.result(metric.update(metric.init(), labels, scores))
        assert float(masked) != pytest.approx(float(everything), rel=1e-3)


def test_iou_counts_do_not_overflow_past_two_to_the_31():
    """An epoch of 200 px masks can put 2³¹ pixels in one cell; int32 counts wrapped to negative.
    Start from counts just below 2³¹ (allocating them would take minutes) and cross it."""
    near = np.array([[2**31 - 3, 2**30], [2**24 - 1, 2**31 - 1]], np.int64)
    metric = MeanIoU(2)
    state = tuple(jax.numpy.asarray(a, jax.numpy.int32) for a in (near >> 24, near & (2**24 - 1)))
    np.testing.assert_array_equal(metric.confusion_matrix(state), near)
    update = jax.jit(metric.update)
    batch = (np.array([0, 0, 0, 0, 0, 1, 1, 1], np.int32), np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int32))
    for _ in range(3):
        state = update(state, *batch)
    counts = near + 3 * np.array([[5, 0], [1, 2]])
    np.testing.assert_array_equal(metric.confusion_matrix(state), counts)
    assert counts.max() > 2**31
    tp = np.diag(counts).astype(np.float64)
    expected = np.mean(tp / (counts.sum(axis=0) + counts.sum(axis=1) - tp))
    assert float(metric.result(state)) == pytest.approx(expected, rel=1e-6)


def test_iou_trains_and_evaluates_through_fit():
    """The two count words are separate buffers: fit donates its carry."""
    model = Sequential([Conv2D(3, 3, 1, activation="softmax", rngs=nnx.Rngs(0))])
    x = RNG.uniform(0, 1, (4, 5, 5, 3)).astype(np.float32)
    y = RNG.integers(0, 3, (4, 5, 5)).astype(np.int32)
    metrics = [MeanIoU(3, sparse_y_pred=False)]
    history = fit(model, (x, y), epochs=1, loss="sparse_categorical_crossentropy", optimizer="sgd",
                  metrics=metrics, batch_size=4, verbose=0)
    scores = evaluate(model, (x, y), loss="sparse_categorical_crossentropy", metrics=metrics)
    predicted = np.asarray(model(x)).argmax(-1)
    expected = np.mean([np.sum((y == c) & (predicted == c)) / np.sum((y == c) | (predicted == c)) for c in range(3)])
    assert scores["mean_iou"] == pytest.approx(expected, rel=1e-6)
    assert 0 < history.history["mean_iou"][0] < 1
