"""One training run for ``test_train_multidevice.py``, started in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (and, for the multi-host test, as one
of two processes). It trains the BN test net (from arrays and from a grain pipeline) and the
book's MNIST convnet (the unchanged experiment script on a small subset), evaluates and predicts, and writes what it saw to
``<out>/result.json`` and ``<out>/weights.npz``.

Run: python tests/train/multidevice_run.py OUT [--restore CKPT] [--experiment]
        [--process I --processes P --coordinator HOST:PORT]
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE), str(HERE.parents[1] / "experiments")]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--restore", type=Path, default=None, help="a BN-net checkpoint written on another topology")
    p.add_argument("--experiment", action="store_true", help="also run the ch. 8 MNIST script")
    p.add_argument("--process", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--coordinator", default=None)
    args = p.parse_args()

    import jax

    jax.config.update("jax_default_matmul_precision", "highest")  # parity holds on TF32/bf16 hardware too
    if args.processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(args.coordinator, num_processes=args.processes, process_id=args.process)

    import numpy as np

    import _common
    from jaxvision.data import ArrayDataset
    from jaxvision.train import ModelCheckpoint, evaluate, fit, predict, restore
    from train_helpers import blobs, dropout_bn_net, train_kwargs, weights

    out = args.out / f"process{args.process}" if args.processes > 1 else args.out
    out.mkdir(parents=True, exist_ok=True)
    result = {"devices": jax.device_count(), "local_devices": jax.local_device_count()}
    saved = {}

    # The BN net: 100 examples in batches of 32, so the partial last batch (4) is replicated.
    x, y = blobs(100)
    model = dropout_bn_net()
    history = fit(model, (x, y), **train_kwargs(epochs=2, validation_data=blobs(36, seed=1),
                                                callbacks=[ModelCheckpoint(args.out / "bn_checkpoint", monitor="loss")]))
    result["bn_history"] = history.history
    saved.update({f"bn/{k}": v for k, v in weights(model).items()})
    reloaded = restore(args.out / "bn_checkpoint", dropout_bn_net(seed=5))  # written collectively, read back
    result["bn_checkpoint_identical"] = all(np.array_equal(v, weights(reloaded)[k]) for k, v in weights(model).items())
    result["bn_evaluate"] = evaluate(model, (x, y), loss="sparse_categorical_crossentropy",
                                     metrics=["accuracy"], batch_size=32)
    saved["bn/predict"] = predict(model, x, batch_size=32)
    try:
        fit(dropout_bn_net(), (x, y), **train_kwargs(epochs=1, batch_size=30))
        result["batch_30"] = "accepted"
    except ValueError as e:
        result["batch_30"] = str(e)

    result["train_step_collectives"] = collectives(x, y)

    # A grain pipeline: each process loads only its part of every global batch.
    from_pipeline = dropout_bn_net()
    fit(from_pipeline, ArrayDataset(x[:96], y[:96], batch_size=32, seed=0), **train_kwargs(epochs=1, verbose=2))
    saved.update({f"pipeline/{k}": v for k, v in weights(from_pipeline).items()})
    result["pipeline_evaluate"] = evaluate(from_pipeline, ArrayDataset(x, y, batch_size=32, shuffle=False),
                                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    if args.restore is not None:
        restored = restore(args.restore, dropout_bn_net(seed=9))
        saved.update({f"restored/{k}": v for k, v in weights(restored).items()})
        result["restored_sharding"] = str(jax.tree.leaves(restored)[0].sharding)

    # Only process 0 prints and writes the experiments' files.
    _common.say("said by process 0")
    _common.write_metrics(argparse.Namespace(out=args.out / "written", command="multidevice_run"),
                          {"process": jax.process_index()})

    if args.experiment:
        run_experiment(args.out / "ch08", result, saved)
    (out / "result.json").write_text(json.dumps(result))
    np.savez(out / "weights.npz", **saved)


def collectives(x, y) -> list[str]:
    """The result shapes of the cross-device operations in the compiled train step that
    gathers its batch from device-resident (row-sharded) data."""
    import re

    import numpy as np

    from jaxvision.train import Callback, fit
    from jaxvision.train.sources import ArraySource
    from train_helpers import dropout_bn_net, train_kwargs

    class Keep(Callback):
        def on_train_end(self, logs, trainer):
            self.trainer = trainer

    keep = Keep()
    fit(dropout_bn_net(), (x, y), **train_kwargs(epochs=1, callbacks=[keep]))
    trainer = keep.trainer
    source = ArraySource(x, y, 32, trainer.placement, what="x")
    order = trainer.placement.replicate(np.arange(len(x), dtype=np.int32))
    text = trainer.steps.train_gather.lower(trainer.carry, trainer.rngs, trainer.key, source.x, source.y, order, 0,
                                            size=32).compile().as_text()
    return re.findall(r"= (\([^)]*\)|\S+) (?:all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)(?:-start)?\(", text)


def run_experiment(out: Path, result: dict, saved: dict) -> None:
    """The book's MNIST convnet through the experiment script, unchanged."""
    import ch08_mnist_convnet
    from jaxvision.models import build_model
    from jaxvision.train import restore
    from train_helpers import weights

    metrics = ch08_mnist_convnet.main(["--limit", "256", "--epochs", "2", "--batch-size", "64", "--out", str(out)])
    result["ch08"] = {k: metrics[k] for k in ("history", "test_accuracy", "test_loss")}
    trained = restore(out / "checkpoint", build_model("mnist_convnet", seed=9))
    saved.update({f"ch08/{k}": v for k, v in weights(trained).items()})


if __name__ == "__main__":
    main()
