"""Where inference time goes: the jitted forward pass against ``predict``, jaxvision and Keras 3.

Run (from the repository root):
    KERAS_BACKEND=jax python bench/applications_forward_vs_predict.py DenseNet121

One process, the same Keras-written weights in both libraries, batch 16 at 224²; after compiling,
three repeats each of four calls in turn: ``jax.jit`` of ``nnx.merge(graphdef, state)(x)``,
``jax.jit`` of Keras's ``stateless_call``, ``jaxvision.train.predict`` and Keras's ``predict``.
Prints images/s of every call.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "weights"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from classic_parity import numpy_glorot_kernels  # noqa: E402
from jaxvision import applications  # noqa: E402
from jaxvision.train import predict  # noqa: E402


def main(name: str = "DenseNet121", batch: int = 16, size: int = 224, repeats: int = 3) -> dict:
    with numpy_glorot_kernels(0):
        twin = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    path = Path(tempfile.mkdtemp()) / "twin.weights.h5"
    twin.save_weights(path)
    model = getattr(applications, name)(weights=path, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    graphdef, state = nnx.split(model)
    ours = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    theirs = jax.jit(lambda trainable, rest, x: twin.stateless_call(trainable, rest, x, training=False)[0])
    variables = lambda: ([v.value for v in twin.trainable_variables],  # noqa: E731  (Keras's predict may
                         [v.value for v in twin.non_trainable_variables])  # replace the buffers)
    calls = {"jit_jaxvision": lambda: ours(state, jnp.asarray(x)).block_until_ready(),
             "jit_keras": lambda: theirs(*variables(), jnp.asarray(x)).block_until_ready(),
             "predict_jaxvision": lambda: predict(model, x, batch_size=batch),
             "predict_keras": lambda: twin.predict(x, batch_size=batch, verbose=0)}
    for call in calls.values():
        call()  # compile
    images_per_s = {key: [] for key in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            images_per_s[key].append(round(batch / (time.perf_counter() - start), 2))
    print(images_per_s)
    return images_per_s


if __name__ == "__main__":
    main(*sys.argv[1:2])
