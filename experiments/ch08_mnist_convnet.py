"""DLwP listings 8.1–8.4: the MNIST convnet (book: 99.1% test accuracy after 5 epochs).

Run:
    python experiments/ch08_mnist_convnet.py [--epochs 5] [--batch-size 64] [--data-dir DIR] [--out runs/ch08_mnist_convnet] [--seed 0]

Without the full MNIST (``$JAXVISION_DATA/mnist`` or a download), it trains on the small real
sample shipped in the package and says so on its first line. The final model is saved to
``<out>/checkpoint``; a killed run resumes from ``<out>/backup`` when started again, and a
finished one (``<out>/metrics.json``) is not trained again unless ``--force``. Logs:
``<out>/log.csv`` and TensorBoard's ``<out>/logs``.

The same command runs on every device there is (batches split over them, same curves): e.g.
``XLA_FLAGS=--xla_force_host_platform_device_count=8 python experiments/ch08_mnist_convnet.py
--limit 256 --epochs 2`` on a CPU, or with ``--distributed`` on each of several hosts.
"""


import numpy as np

import _common
from jaxvision.data import load_mnist_or_sample
from jaxvision.models import build_model
from jaxvision.train import evaluate, fit, plot_history

NAME = "ch08_mnist_convnet"

PROFILES = {"book": {"epochs": 5, "batch_size": 64}, "quick": {"epochs": 5, "batch_size": 64}}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--profile", choices=("book", "quick"), default="book",
                   help="both follow the book: MNIST trains in minutes on a CPU")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images of each split (smoke tests)")
    args = _common.apply_profile(p.parse_args(argv), PROFILES)
    if (done := _common.finished(args)) is not None:
        return done
    ((x_train, y_train), (x_test, y_test)), source = load_mnist_or_sample(args.data_dir)
    _common.say(f"data: {source}")
    if args.limit is not None:
        x_train, y_train, x_test, y_test = x_train[:args.limit], y_train[:args.limit], x_test[:args.limit], y_test[:args.limit]
    prepare = lambda x: (x.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)  # noqa: E731
    x_train, x_test = prepare(x_train), prepare(x_test)

    model = build_model("mnist_convnet", seed=args.seed)
    with _common.Timer() as timer:
        history = fit(model, (x_train, y_train.astype(np.int32)), epochs=args.epochs,
                      batch_size=args.batch_size, loss="sparse_categorical_crossentropy",
                      optimizer="adam", metrics=["accuracy"], seed=args.seed,
                      # The book holds out no validation set: keep the last epoch's model, and
                      # resume a killed run from its backup.
                      callbacks=_common.callbacks(args, monitor="loss", save_best_only=False))
    test = evaluate(model, (x_test, y_test.astype(np.int32)), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"], batch_size=256)
    _common.say(f"Test accuracy: {test['accuracy']:.4f}")
    plot_history(history, args.out / "curves.png", metrics=("accuracy",))
    metrics = {"experiment": NAME, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "history": history.history, "epochs": args.epochs, "batch_size": args.batch_size,
               "seconds": timer.seconds, "data": source,
               "train_images": len(x_train), "profile": args.profile, "seed": args.seed}
    return _common.finish(args, metrics)


if __name__ == "__main__":
    _common.run(main)
