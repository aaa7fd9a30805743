"""DLwP listings 10.1–10.6: the intermediate activations of a trained convnet on one image.

Run:
    python experiments/ch10_activations.py [--checkpoint runs/ch08_dogs_vs_cats_augmented/checkpoint]
        [--layer NAME ...] [--image FILE] [--image-size N] [--out runs/ch10_activations]

Defaults: the ch. 8 convnet trained with augmentation and dropout (the book loads
``convnet_from_scratch_with_augmentation.keras``); every conv and pooling layer of the model;
the first cat of $JAXVISION_DATA/dogs_vs_cats_small/test/cat/ in sorted order; the image size
the checkpoint was trained at. Writes ``input.png``, ``figure_10_2.png`` (channel 5 of the first
layer's activation, viridis, as the book's ``matshow``), one ``activations/<layer>.png`` grid per
layer (16 channels a row, each channel standardised as in listing 10.6) and ``metrics.json``.
"""


import numpy as np
from PIL import Image

import _ch10
import _common
from jaxvision.interpret import activations, conv_and_pool_layers, save_activation_grids, save_matshow

FIGURE_10_2_CHANNEL = 5  # the book's plt.matshow(first_layer_activation[0, :, :, 5])


def main(argv: list[str] | None = None) -> dict:
    p = _ch10.parser(__doc__, "ch10_activations", "runs/ch08_dogs_vs_cats_augmented/checkpoint")
    args = p.parse_args(argv)
    if args.image and len(args.image) > 1:
        p.error("--image: the activations are drawn for one image")
    model = _ch10.load_model(args.checkpoint)
    size = _ch10.image_size(args)
    image_path = args.image[0] if args.image else _ch10.test_images(args, "cat", 1)[0]
    image = _ch10.load_image(image_path, size)
    with _common.Timer() as timer:
        # Listing 10.3's layers (Conv2D and MaxPooling2D) unless --layer names others.
        acts = activations(model, image[None], args.layer or conv_and_pool_layers(model, image[None].shape))
    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(args.out / "input.png")
    first_layer, first = next(iter(acts.items()))
    channel = min(FIGURE_10_2_CHANNEL, first.shape[-1] - 1)
    figure_10_2 = save_matshow(first[0, :, :, channel], args.out / "figure_10_2.png", cell=4)
    paths = save_activation_grids(acts, args.out / "activations")
    layers = {name: {"shape": list(a.shape), "png": str(path),
                     "blank_channels": int((~a[0].any(axis=(0, 1))).sum())}  # the book notes these grow with depth
              for (name, a), path in zip(acts.items(), paths)}
    for name, info in layers.items():
        print(f"{name:>24} {str(tuple(info['shape'])):>20} blank channels: {info['blank_channels']}")
    metrics = {"experiment": "ch10_activations", "checkpoint": str(args.checkpoint), "image": str(image_path),
               "image_size": size, "layers": layers, "seconds": timer.seconds,
               "figure_10_2": {"layer": first_layer, "channel": channel, "png": str(figure_10_2)}}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
