"""``python -m jaxvision.debug compare``: a Keras model file against a jaxvision architecture.

    python -m jaxvision.debug compare --keras mobilenet.keras --jaxvision mobilenet \\
        --arg alpha=0.75 --weights mobilenet.keras [--image elephant.jpg] [--preprocess tf] [--grads]

The Keras file is loaded by Keras (``keras.saving.load_model``, safe mode); the jaxvision model
is ``build_model(ARCH, **args)`` with ``load_keras_weights(model, --weights)`` (default: the
Keras file itself). Prints the layer table; exit status 0 when every compared tensor is
identical within tolerance, 1 at a divergence, 2 on a usage or file error: any failure before
the comparison ends (a damaged or non-regular file, a config Keras cannot read) prints one line
and exits 2, so status 1 always means a measured divergence (``--debug`` shows the traceback).
"""

import argparse
import json
import sys

import numpy as np


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxvision.debug", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="a Keras model file against a jaxvision architecture")
    c.add_argument("--keras", required=True, help="a .keras file (or anything keras.saving.load_model reads)")
    c.add_argument("--jaxvision", required=True, help="a registered architecture, e.g. mobilenet")
    c.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="builder arguments (JSON values), e.g. alpha=0.75 include_top=false")
    c.add_argument("--weights", default=None, help="weights for the jaxvision model (default: the --keras file)")
    c.add_argument("--image", default=None, help="an image file (resized with Pillow bilinear); default: seeded noise")
    c.add_argument("--preprocess", choices=("none", "tf"), default="none", help="tf: x / 127.5 - 1")
    c.add_argument("--batch", type=int, default=2)
    c.add_argument("--grads", action="store_true", help="also compare gradients")
    c.add_argument("--training", action="store_true", help="compare in training mode")
    c.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    try:
        from jaxvision.untrusted import regular_file

        regular_file(args.keras, "--keras file")  # before Keras opens it: a FIFO would hang it
        from jaxvision.debug import compare
        from jaxvision.debug.compare import keras_on_jax
        from jaxvision.models import build_model
        from jaxvision.weights import load_keras_weights

        reference = keras_on_jax().saving.load_model(args.keras)
        kwargs = dict(item.split("=", 1) for item in args.arg)
        model = build_model(args.jaxvision, **{k: _value(v) for k, v in kwargs.items()})
        load_keras_weights(model, args.weights or args.keras)
        height, width, channels = reference.inputs[0].shape[1:]
        if args.image:
            from jaxvision.data.image_io import open_image

            with open_image(args.image) as img:
                image = np.asarray(img.convert("RGB").resize((width, height), 2), np.float32)  # 2: bilinear
            x = np.repeat(image[None], args.batch, axis=0)
        else:
            x = np.random.default_rng(0).uniform(0, 255, (args.batch, height, width, channels)).astype(np.float32)
        if args.preprocess == "tf":
            x = x / 127.5 - 1.0
        report = compare(model, reference, x, grads=args.grads, training=args.training)
    except Exception as error:  # Keras's and h5py's errors for a damaged file come in every type
        if args.debug:
            raise
        message = " ".join(str(error).split())[:500]
        print(f"python -m jaxvision.debug: error: {type(error).__name__}: {message}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.identical else 1


if __name__ == "__main__":
    sys.exit(main())
