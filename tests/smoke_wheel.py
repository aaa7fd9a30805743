"""Smoke test of an installed jaxvision wheel, run by ``test_package.py`` with the Python of a
fresh venv, from outside the source tree: import, build a model, one ``fit`` step, and the
elephant's prediction when ``$JAXVISION_DATA`` holds the pretrained MobileNet and the photo."""

import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    import jaxvision
    from jaxvision.models import build_model
    from jaxvision.train import fit

    assert "site-packages" in jaxvision.__file__ and "editable" not in jaxvision.__file__, jaxvision.__file__
    model = build_model("mnist_convnet")
    x = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    history = fit(model, (x, np.arange(8) % 10), epochs=1, batch_size=8, loss="sparse_categorical_crossentropy",
                  optimizer="adam", verbose=0)
    print("version", jaxvision.__version__, "loss", round(history.history["loss"][0], 4))
    data = Path(os.environ.get("JAXVISION_DATA", "/nonexistent"))
    if (data / "images" / "elephant.jpg").is_file() and (data / "pretrained").is_dir():
        from PIL import Image

        from jaxvision.applications import MobileNet, decode_predictions, preprocess_input

        net = MobileNet(alpha=0.75, weights="imagenet")
        with Image.open(data / "images" / "elephant.jpg") as img:
            photo = np.asarray(img.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
        top = decode_predictions(np.asarray(net(preprocess_input(photo[None]))), top=1)[0][0]
        print("elephant", top[1], round(float(top[2]), 4))


if __name__ == "__main__":
    main()
    sys.exit(0)
