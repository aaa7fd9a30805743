"""Feature extraction (listing 8.25's ``conv_base.predict``) with MobileNet α 0.75, no top, at
180 × 180: jaxvision's jitted forward pass against Keras 3's ``model.predict``, same weights
(the ImageNet TF.js copy), same preprocessed images, same process, runs interleaved.

    JAXVISION_DATA=../shared/data KERAS_BACKEND=jax python bench/bench_feature_extraction.py
    ... --images 256 --batch 32 --rounds 3 --out runs/bench_feature_extraction.json

Each round extracts features of all ``--images`` in batches of ``--batch`` with each library
(after one warm-up call that compiles); images/s is the median over rounds. The outputs are
compared, so both really computed the same features.
"""

import argparse
import json
import os
import statistics
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from jaxvision.applications import MobileNet  # noqa: E402
from jaxvision.data.download import data_root  # noqa: E402
from jaxvision.weights.tfjs import read_tfjs  # noqa: E402

SIZE, ALPHA = 180, 0.75


def jaxvision_extractor(batch: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 180 px is not one of Keras's ImageNet sizes
        model = MobileNet(alpha=ALPHA, include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3))
    model.eval()
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))

    def predict(images: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(forward(state, images[i:i + batch])) for i in range(0, len(images), batch)])

    return predict


def keras_extractor(batch: int):
    import keras

    model = keras.applications.MobileNet(alpha=ALPHA, include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    arrays = {layer.name: [a for _, a in layer.weights] for layer in
              read_tfjs(data_root() / "pretrained" / "mobilenet_v1_0.75_224_tfjs")}
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(arrays[layer.name])
    return lambda images: model.predict(images, batch_size=batch, verbose=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="optional JSON file for the numbers")
    args = parser.parse_args()
    images = np.random.default_rng(0).uniform(-1, 1, (args.images, SIZE, SIZE, 3)).astype(np.float32)
    extractors = {"jaxvision": jaxvision_extractor(args.batch), "keras": keras_extractor(args.batch)}
    features = {name: extract(images[:args.batch]) for name, extract in extractors.items()}  # compile
    difference = float(np.abs(features["jaxvision"] - features["keras"]).max())
    rates: dict[str, list[float]] = {name: [] for name in extractors}
    for _ in range(args.rounds):
        for name, extract in extractors.items():
            start = time.perf_counter()
            extract(images)
            rates[name].append(args.images / (time.perf_counter() - start))
    result = {name: statistics.median(r) for name, r in rates.items()}
    print(f"backend={jax.default_backend()} MobileNet alpha={ALPHA} no top, {SIZE}px, {args.images} images, "
          f"batch {args.batch}, median of {args.rounds} rounds; features {features['keras'].shape[1:]}, "
          f"max |jaxvision - keras| = {difference:.2e}")
    for name, rate in result.items():
        print(f"{name:>10}: {rate:8.1f} images/s  (rounds: {', '.join(f'{r:.1f}' for r in rates[name])})")
    print(f"jaxvision / keras: {result['jaxvision'] / result['keras']:.2f}x")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"images_per_s": result, "rounds": rates, "max_abs_difference": difference,
                       "images": args.images, "batch": args.batch, "size": SIZE, "alpha": ALPHA}, f, indent=2)


if __name__ == "__main__":
    main()
