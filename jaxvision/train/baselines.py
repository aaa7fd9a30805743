"""The trivial baseline a segmenter must beat: one constant mask for every image.

The mask is the training set's per-pixel frequency of the target class, thresholded at the
value that scores best on the validation set. A model that learned where objects usually are,
but not what they look like, scores about as well as this mask; a segmenter that looks at the
image scores well above it.
"""

from dataclasses import dataclass

import numpy as np


def class_iou(y_true: np.ndarray, y_pred: np.ndarray, class_id: int) -> float:
    """IoU of one class over all pixels, ``TP / (TP + FP + FN)``, as ``IoU(target_class_ids=(class_id,))``
    accumulates it; labels and predictions are integer class maps of the same shape.

    Examples:
        >>> class_iou(np.array([[0, 0, 1, 1]]), np.array([[0, 1, 0, 1]]), 0)
        0.3333333333333333
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"class_iou: labels {y_true.shape} and predictions {y_pred.shape} differ in shape")
    true, pred = y_true == class_id, y_pred == class_id
    union = np.logical_or(true, pred).sum()
    return float(np.logical_and(true, pred).sum() / union) if union else 0.0


@dataclass(frozen=True)
class ConstantMaskBaseline:
    """The constant prediction: ``target_class`` where ``frequency >= threshold``, else ``other_class``."""

    frequency: np.ndarray  # (H, W): share of training masks with the target class at each pixel
    threshold: float
    target_class: int
    other_class: int
    val_iou: float  # the target class's IoU on the validation masks at ``threshold``

    @property
    def mask(self) -> np.ndarray:
        """The (H, W) class map predicted for every image."""
        return np.where(self.frequency >= self.threshold, self.target_class, self.other_class)

    def predict(self, count: int) -> np.ndarray:
        """The class map for ``count`` images, (count, H, W)."""
        return np.broadcast_to(self.mask, (count, *self.mask.shape))

    def score(self, y_true: np.ndarray) -> float:
        """The target class's IoU of the constant mask on labels ``y_true`` (N, H, W)."""
        y_true = np.asarray(y_true)
        return class_iou(y_true, self.predict(len(y_true)), self.target_class)


def constant_mask_baseline(train_labels: np.ndarray, val_labels: np.ndarray, *, target_class: int = 0,
                           other_class: int = 1, steps: int = 100) -> ConstantMaskBaseline:
    """The mean training mask of ``target_class``, thresholded where the validation IoU is best.

    Args:
      train_labels: (N, H, W) integer class maps (a trailing axis of size 1 is dropped).
      val_labels: (M, H, W) class maps of the same size, to choose the threshold on.
      target_class: the class scored (the trimaps' foreground is class 0).
      other_class: what the baseline predicts elsewhere (the trimaps' background, class 1).
      steps: thresholds tried, evenly spaced in (0, 1].

    Examples:
        >>> train = np.array([[[0, 0, 1]], [[0, 1, 1]]])  # the left pixel is always foreground
        >>> baseline = constant_mask_baseline(train, np.array([[[0, 1, 1]]]))
        >>> baseline.mask.tolist(), baseline.val_iou
        ([[0, 1, 1]], 1.0)
    """
    train_labels, val_labels = (np.asarray(a) for a in (train_labels, val_labels))
    train_labels, val_labels = (a[..., 0] if a.ndim == 4 and a.shape[-1] == 1 else a for a in (train_labels, val_labels))
    if train_labels.ndim != 3 or val_labels.shape[1:] != train_labels.shape[1:]:
        raise ValueError(f"constant_mask_baseline: expected (N, H, W) class maps of one size, got train "
                         f"{train_labels.shape} and validation {val_labels.shape}")
    frequency = (train_labels == target_class).mean(axis=0)
    best = None
    for threshold in np.arange(1, steps + 1) / steps:
        candidate = ConstantMaskBaseline(frequency, float(threshold), target_class, other_class, 0.0)
        iou = candidate.score(val_labels)
        if best is None or iou > best[0]:
            best = (iou, float(threshold))
    return ConstantMaskBaseline(frequency, best[1], target_class, other_class, best[0])
