"""Training: Keras's ``fit``/``evaluate``/``predict`` with jitted steps over a device mesh,
losses, metrics, callbacks, orbax checkpoints and training curves."""

from jaxvision.train.augmented import PipelineAugmentation
from jaxvision.train.baselines import ConstantMaskBaseline, class_iou, constant_mask_baseline
from jaxvision.train.callbacks import BackupAndRestore, Callback, EarlyStopping, ModelCheckpoint
from jaxvision.train.checkpoint import load_model, restore, save_checkpoint
from jaxvision.train.loggers import CSVLogger, TensorBoard
from jaxvision.train.loop import evaluate, fit, predict
from jaxvision.train.losses import (binary_crossentropy, binary_crossentropy_from_logits, categorical_crossentropy,
                                    sparse_categorical_crossentropy)
from jaxvision.train.metrics import (IoU, MeanIoU, MeanMetric, Metric, accuracy, binary_accuracy,
                                     categorical_accuracy, sparse_categorical_accuracy)
from jaxvision.train.history import History
from jaxvision.train.plots import history_figures, plot_history, save_image_grid, save_mask_grid
from jaxvision.train.sharding import default_mesh
from jaxvision.train.trainer import Trainer

__all__ = [
    "BackupAndRestore", "CSVLogger", "Callback", "ConstantMaskBaseline", "EarlyStopping", "History", "IoU", "MeanIoU",
    "MeanMetric", "Metric", "ModelCheckpoint", "PipelineAugmentation", "TensorBoard", "Trainer", "accuracy",
    "binary_accuracy", "binary_crossentropy", "class_iou", "constant_mask_baseline",
    "binary_crossentropy_from_logits", "categorical_accuracy", "categorical_crossentropy", "default_mesh",
    "evaluate", "fit",
    "history_figures", "load_model", "plot_history", "predict", "restore", "save_checkpoint", "save_image_grid", "save_mask_grid",
    "sparse_categorical_accuracy", "sparse_categorical_crossentropy",
]
