"""The training process that ``test_kill_resume.py`` kills: a tiny model, many short epochs,
a checkpoint and a backup every epoch. Run as ``python kill_worker.py OUT EPOCHS``; it writes
the final weights to ``OUT/final.npz`` (atomically) and only then deletes its backup, as the
experiments do with ``metrics.json``. A finished run exits at once."""

import os
import shutil
import sys
from pathlib import Path


def main(out: Path, epochs: int) -> None:
    if (out / "final.npz").exists():
        return
    import numpy as np

    from jaxvision.train import BackupAndRestore, ModelCheckpoint, fit
    from train_helpers import blobs, dropout_bn_net, train_kwargs, weights

    model = dropout_bn_net()
    fit(model, blobs(100), **train_kwargs(epochs=epochs, callbacks=[
        ModelCheckpoint(out / "checkpoint", monitor="loss"), BackupAndRestore(out / "backup", delete_checkpoint=False)]))
    with open(out / "final.tmp.npz", "wb") as f:
        np.savez(f, **weights(model))
    os.replace(out / "final.tmp.npz", out / "final.npz")
    shutil.rmtree(out / "backup")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
