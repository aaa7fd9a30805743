"""Two custom objectives for ``test_objectives.py``, each trained for one epoch on a mesh of
8 (forced host) devices and on a mesh of 1, from the same weights; writes ``<out>/result.json``.

Run: XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/train/objectives_run.py OUT
"""

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from jaxvision.layers import Conv2D, Dense, GlobalAveragePooling2D
from jaxvision.models import Model
from jaxvision.optimizers import Adam
from jaxvision.train import binary_crossentropy, fit


class AuxiliaryNet(Model):
    """A model that adds a loss on its own activations (Keras's ``add_loss`` in ``call``)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv2d = Conv2D(2, 4, 3, activation="relu", kernel_regularizer="l2", rngs=rngs)
        self.pool = GlobalAveragePooling2D()
        self.dense = Dense(4, 1, activation="sigmoid", rngs=rngs)

    def forward(self, x, tap):
        features = tap("conv2d", self.conv2d(x))
        self.add_loss(0.1 * jnp.mean(jnp.square(features)))  # keep the feature maps small
        return tap("dense", self.dense(tap("pool", self.pool(features))))


def gradient_penalty(model, x, y, key):
    """Binary cross-entropy plus 0.5 × the mean squared input gradient of the output."""
    y_pred = model(x)
    grads = jax.grad(lambda inputs: model(inputs).sum())(x)
    return binary_crossentropy(y, y_pred) + 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3))), y_pred


def flat(model) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))])


def run(example: str, x: np.ndarray, y: np.ndarray) -> dict:
    weights, losses, devices = [], [], []
    for count in (8, 1):
        model = AuxiliaryNet(rngs=nnx.Rngs(0))
        initial = flat(model)
        mesh = Mesh(np.array(jax.devices()[:count]), ("data",))
        objective = gradient_penalty if example == "gradient_penalty" else None
        history = fit(model, (x, y), epochs=1, loss="binary_crossentropy", objective=objective,
                      optimizer=Adam(0.01), batch_size=16, shuffle=False, verbose=0, mesh=mesh)
        weights.append(flat(model).tolist())
        losses.append(history.history["loss"][0])
        devices.append(count)
    plain = float(binary_crossentropy(y, AuxiliaryNet(rngs=nnx.Rngs(0))(x)))
    return {"weights": weights, "loss": losses, "devices": devices, "initial": initial.tolist(),
            "penalty_share": 1 - plain / losses[1]}


def main() -> None:
    jax.config.update("jax_default_matmul_precision", "highest")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6, 6, 2)).astype(np.float32)
    y = (x[:, 0, 0, 0] + x[:, 1, 1, 1] > 0).astype(np.float32)
    result = {example: run(example, x, y) for example in ("gradient_penalty", "auxiliary_loss")}
    Path(sys.argv[1], "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
