"""Build ``assets/mnist_sample.npz``, the small real MNIST sample shipped in the package.

It holds the first 10,000 training and the first 2,000 test images with their labels, in
the original MNIST order, taken from the full set that ``load_mnist`` reads (the shared
offline copy was used: its test images are the canonical ones, its training images the
rebuild described in the data README, within one grey level of the originals). Compressed
with ``np.savez_compressed``; about 1.9 MB.

Run: ``python -m jaxvision.data.make_mnist_sample [DATA_DIR]``.
"""

import sys
from pathlib import Path

import numpy as np

from jaxvision.data.mnist import SAMPLE_PATH, SAMPLE_SIZES, load_mnist


def make_sample(data_dir: str | Path | None = None, out: Path = SAMPLE_PATH) -> Path:
    """Write the sample npz from the full set in ``data_dir`` (never downloads)."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=False)
    n_train, n_test = SAMPLE_SIZES
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x_train=x_train[:n_train], y_train=y_train[:n_train],
                        x_test=x_test[:n_test], y_test=y_test[:n_test])
    return out


if __name__ == "__main__":
    print(make_sample(sys.argv[1] if len(sys.argv) > 1 else None))
