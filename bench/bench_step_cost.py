"""XLA's cost analysis of one compiled train step, jaxvision against Keras 3 (JAX backend).

    python bench/bench_step_cost.py [--models mnist dogs]

FLOPs and bytes accessed as XLA counts them for the compiled step (forward, backward, Adam,
loss and accuracy) on the same model and batch. Unlike wall time, these do not depend on how
busy the machine is, so they show whether one library's step does more work than the other's.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_twins  # noqa: E402
from jaxvision.models import build_model  # noqa: E402
from jaxvision.train.cost import lower_train_step, step_cost  # noqa: E402

# name: (builder, keras twin factory, input shape, batch, loss, label dtype)
MODELS = {
    "mnist": ("mnist_convnet", lambda: keras_twins.keras_mnist_convnet(keras), (28, 28, 1), 64,
              "sparse_categorical_crossentropy", np.int32),
    "dogs": ("dogs_vs_cats_convnet", lambda: keras_twins.keras_dogs_vs_cats_convnet(keras, 180), (180, 180, 3), 32,
             "binary_crossentropy", np.float32),
}


def cost(compiled) -> dict:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return {"flops": analysis["flops"], "bytes_accessed": analysis["bytes accessed"]}


def step_costs(key: str) -> dict:
    builder, twin_factory, shape, batch, loss, label_dtype = MODELS[key]
    x = np.zeros((batch, *shape), np.float32)
    y = np.zeros((batch, 1) if label_dtype == np.float32 else (batch,), label_dtype)
    steps, args = lower_train_step(build_model(builder), loss=loss, input_shape=x.shape, label_shape=y.shape,
                                   label_dtype=label_dtype)
    ours = step_cost(steps, args, compile=True)
    twin = twin_factory()
    twin.compile(optimizer=keras.optimizers.Adam(), loss=loss, metrics=["accuracy"])
    twin.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # builds the optimizer and metric variables
    state = tuple([v.value for v in variables] for variables in (
        twin.trainable_variables, twin.non_trainable_variables, twin.optimizer.variables, twin.metrics_variables))
    theirs = jax.jit(twin.train_step).lower(state, (x, y))
    row = {"model": builder, "batch_size": batch, "input": list(shape),
           "jaxvision": {"flops": ours.flops, "bytes_accessed": ours.bytes_accessed}, "keras": cost(theirs.compile())}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    return [step_costs(m) for m in p.parse_args(argv).models]


if __name__ == "__main__":
    main(sys.argv[1:])
