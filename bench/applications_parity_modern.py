"""All depthwise and modern keras.applications constructors against Keras 3 (JAX backend):
parameter counts and weighted-layer order from ``nnx.eval_shape`` against the committed
fixture (tests/applications/fixtures/keras_params_modern.json), then outputs on random weights
Keras writes as legacy ``.h5`` (also checking that ``.weights.h5`` loads the same tensors), in
inference and batch-statistics modes (the moving statistics that pass leaves compared too), at a
small input size, on logits (``classifier_activation=None``; a saturated softmax hides
differences), both libraries built for that size (it sets Keras's padding before stride-2
depthwise convolutions). Default 64 px, batch 2: at 32 px, the smallest size Keras allows, the
last feature maps are 1 × 1, so each BatchNorm on batch statistics normalises 2 numbers per
channel and amplifies float32 rounding (MobileNetV2 there: 7.3e-3 relative); ``--batch``
conditions the batch statistics better. ``--float64`` also runs jaxvision's model in float64
(``set_policy(model, "float64")``) and reports how far each library's float32 output is from
that near-exact one: where the two float32 programs differ by more than 1e-5, it tells whether
jaxvision or Keras is the farther from the exact result.

    KERAS_BACKEND=jax PYTHONPATH=.:tests/applications python bench/applications_parity_modern.py \\
        [--models MobileNetV2 ...] [--size 64] [--batch 2] [--float64] [--json runs/applications_parity_modern.json]

The suite tests one constructor per family the same way (tests/applications/test_modern_parity.py).
"""

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "applications")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import jaxvision.applications as applications  # noqa: E402
from jaxvision.layers import set_policy  # noqa: E402
from jaxvision.weights.model_layers import keras_layers  # noqa: E402
from modern_twins import (keras_outputs, moving_statistics_pairs, numpy_initialisers, our_outputs,  # noqa: E402
                          randomise_modern, write_both)

FIXTURE = ROOT / "tests" / "applications" / "fixtures" / "keras_params_modern.json"


def count_and_order(name: str, keras_table: dict) -> dict:
    model = nnx.eval_shape(lambda: getattr(applications, name)())
    total = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))
    order = list(dict.fromkeys(n.split("/")[0] for n in keras_layers(model)))
    keras = keras_table[name]
    return {"params": total, "keras_params": keras["trainable"] + keras["non_trainable"],
            "order_equal": order == keras["weighted_layers"]}


def parity(name: str, size: int, folder: Path, batch: int = 2, float64: bool = False) -> dict:
    import keras

    keras.backend.clear_session()
    # Logits, not softmax (a saturated softmax would hide differences); both built for the input size,
    # which sets Keras's padding before stride-2 depthwise convolutions (EfficientNet, NASNet).
    kwargs = {"classes": 10, "input_shape": (size, size, 3), "classifier_activation": None}
    with numpy_initialisers(seed=len(name)):
        twin = getattr(keras.applications, name)(weights=None, **kwargs)
    randomise_modern(twin, seed=1)
    legacy, weights_h5 = write_both(twin, str(folder / name))
    low, high = (-1.0, 1.0) if name == "MobileNetV2" else (0.0, 255.0)
    x = np.random.default_rng(0).uniform(low, high, (batch, size, size, 3)).astype(np.float32)
    keras_infer, keras_train, keras_stats = keras_outputs(twin, x)
    model = getattr(applications, name)(weights=legacy, **kwargs)
    again = getattr(applications, name)(weights=weights_h5, **kwargs)
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)),
                                                     jax.tree.leaves(nnx.state(again, nnx.Param, nnx.BatchStat))))
    infer, train, stats = our_outputs(model, jnp.asarray(x))
    relative = lambda a, b: float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))  # noqa: E731
    pairs, batchnorms = moving_statistics_pairs(model, stats, twin, keras_stats)
    exact = {}
    if float64:
        with jax.enable_x64(True):
            model64 = set_policy(getattr(applications, name)(weights=legacy, **kwargs), "float64")
            infer64, train64, _ = our_outputs(model64, jnp.asarray(x, jnp.float64))
        exact = {f"{mode}_{side}_vs_float64": relative(ours_or_keras, reference)
                 for mode, reference, ours, keras_out in (("inference", infer64, infer, keras_infer),
                                                          ("batch_stats", train64, train, keras_train))
                 for side, ours_or_keras in (("ours", ours), ("keras", keras_out))}
    return exact | {"size": size, "batch": batch, "weights_h5_same_tensors": same,
            "inference_max_rel_error": relative(infer, keras_infer),
            "batch_stats_max_rel_error": relative(train, keras_train),
            "moving_stats_max_rel_error": max((relative(a, b) for a, b in pairs), default=0.0),
            "moving_stats_all_compared": len(pairs) == 2 * batchnorms}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=applications.MODERN)
    p.add_argument("--size", type=int, default=64, help="input size (see the module docstring)")
    p.add_argument("--batch", type=int, default=2, help="images per batch (more condition batch statistics better)")
    p.add_argument("--float64", action="store_true", help="also each library's distance from jaxvision in float64")
    p.add_argument("--no-parity", action="store_true", help="only the parameter counts and layer order")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    table = json.loads(FIXTURE.read_text())
    rows, failures = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            start = time.perf_counter()
            row = {"model": name} | count_and_order(name, table)
            if not args.no_parity:
                row |= parity(name, args.size, Path(tmp), args.batch, args.float64)
            row["seconds"] = round(time.perf_counter() - start, 1)
            ok = (row["params"] == row["keras_params"] and row["order_equal"]
                  and row.get("weights_h5_same_tensors", True)
                  and row.get("moving_stats_all_compared", True)
                  and all(row.get(f"{mode}_max_rel_error", 0) <= 1e-5
                          for mode in ("inference", "batch_stats", "moving_stats")))
            failures += not ok
            print(json.dumps(row | {"ok": ok}), flush=True)
            rows.append(row | {"ok": ok})
            gc.collect()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"keras": __import__("keras").__version__, "jax": jax.__version__,
                                         "rows": rows}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
