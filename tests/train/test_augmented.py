"""Augmentation in the data pipeline (the book's choice for its mini-Xception) gives the very
batches that the same augmentation stage inside the model gives in ``fit``'s step, for the same
seed: same order, same keys, same images."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision.layers import Dense, GlobalAveragePooling2D
from jaxvision.models import Sequential
from jaxvision.models.augmentation import data_augmentation
from jaxvision.models.rngs import model_rngs
from jaxvision.train import PipelineAugmentation, fit


def test_pipeline_and_in_model_augmentation_give_the_same_batches():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)
    y = np.arange(4, dtype=np.float32)[:, None]
    model = Sequential([("data_augmentation", data_augmentation(model_rngs(3))), GlobalAveragePooling2D(),
                        Dense(3, 1, rngs=nnx.Rngs(0))])
    in_model = []

    def objective(model, x, y, key):  # the model's own forward, its augmented input recorded
        augmented = model.data_augmentation(x)
        jax.debug.callback(lambda images: in_model.append(np.asarray(images)), augmented)
        y_pred = model.dense(model.global_average_pooling2d(augmented))
        return jnp.mean((y_pred - y) ** 2), y_pred

    fit(model, (x, y), epochs=2, batch_size=2, loss=lambda t, p: (t - p) ** 2, optimizer=optax.sgd(0.0), seed=7,
        objective=objective, verbose=0)
    batches = PipelineAugmentation(x, y, data_augmentation(model_rngs(1)), batch_size=2, seed=7)
    pipeline = []
    for epoch in range(2):
        batches.set_epoch(epoch)
        pipeline += [images for images, _ in batches]
    assert [b.shape[0] for b in pipeline] == [2, 2] * 2 and len(in_model) == 4
    for ours, theirs in zip(pipeline, in_model, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)
    assert not np.allclose(pipeline[0], pipeline[2], atol=1.0)  # epochs differ: new keys (and order)
    order = np.concatenate([labels for _, labels in batches])[:, 0].astype(int)  # epoch 2, shuffled as fit
    assert sorted(order) == [0, 1, 2, 3] and order.tolist() != [0, 1, 2, 3]
