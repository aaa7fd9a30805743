"""DLwP listings 10.1–10.6: the intermediate activations of a trained convnet on one image.

Run:
    python experiments/ch10_activations.py [--checkpoint runs/ch08_dogs_vs_cats_augmented/checkpoint]
        [--layer NAME ...] [--image FILE] [--image-size N] [--out runs/ch10_activations]
        [--backbone mobilenet|xception [--weights PATH]]

Defaults: the ch. 8 convnet trained with augmentation and dropout (the book loads
``convnet_from_scratch_with_augmentation.keras``); every conv and pooling layer of the model;
the first cat of $JAXVISION_DATA/dogs_vs_cats_small/test/cat/ in sorted order; the image size
the checkpoint was trained at. Writes ``input.png``, ``figure_10_2.png`` (channel 5 of the first
layer's activation, viridis, as the book's ``matshow``), one ``activations/<layer>.png`` grid per
layer (16 channels a row, each channel standardised as in listing 10.6) and ``metrics.json``.
``--backbone`` draws the activations of a pretrained ImageNet model instead (``xception`` with
``--weights PATH``: the book's Xception), on ``preprocess_input`` images at its training size.
"""


import numpy as np
from PIL import Image

import _ch10
import _common
from jaxvision.interpret import activations, conv_and_pool_layers, save_activation_grids, save_matshow

FIGURE_10_2_CHANNEL = 5  # the book's plt.matshow(first_layer_activation[0, :, :, 5])
DEFAULT_CHECKPOINT = "runs/ch08_dogs_vs_cats_augmented/checkpoint"


def main(argv: list[str] | None = None) -> dict:
    p = _ch10.parser(__doc__, "ch10_activations", DEFAULT_CHECKPOINT)
    args = p.parse_args(argv)
    if args.image and len(args.image) > 1:
        p.error("--image: the activations are drawn for one image")
    _ch10.check_backbone(args, DEFAULT_CHECKPOINT)
    image_path = args.image[0] if args.image else _ch10.test_images(args, "cat", 1)[0]
    if args.backbone:
        from jaxvision.applications import preprocess_input

        args.checkpoint = None  # the parser's default, unused with a backbone
        model = _ch10.pretrained(args, include_top=False)
        size = args.image_size or _ch10.PRETRAINED_IMAGE_SIZE[args.backbone]
        image = _ch10.load_photo(image_path, size)
        model_input = preprocess_input(image[None])
    else:
        model = _ch10.load_model(args.checkpoint)
        size = _ch10.image_size(args)
        image = _ch10.load_image(image_path, size)
        model_input = image[None]  # the trained convnets rescale inside
    with _common.Timer() as timer:
        # Listing 10.3's layers (Conv2D and MaxPooling2D) unless --layer names others.
        acts = activations(model, model_input, args.layer or conv_and_pool_layers(model, model_input.shape))
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
    model_name = str(args.checkpoint) if args.checkpoint else _ch10.pretrained_name(args)
    metrics = {"experiment": "ch10_activations", "checkpoint": args.checkpoint and str(args.checkpoint),
               "model": model_name, "image": str(image_path),
               "image_size": size, "layers": layers, "seconds": timer.seconds,
               "figure_10_2": {"layer": first_layer, "channel": channel, "png": str(figure_10_2)}}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
