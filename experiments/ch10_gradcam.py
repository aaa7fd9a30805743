"""DLwP listings 10.17–10.25: Grad-CAM heatmaps of a trained convnet on a few cats and dogs.

Run:
    python experiments/ch10_gradcam.py [--checkpoint runs/ch09_mini_xception/checkpoint]
        [--layer NAME] [--image FILE ...] [--per-class 3] [--image-size N] [--out runs/ch10_gradcam]

Defaults: the model's last (N, H, W, C) layer with more than one position (listing 10.19's
"last conv layer"; Grad-CAM on a 1 × 1 map is uniform, so such a --layer gets a warning); the first
``--per-class`` cats and dogs of $JAXVISION_DATA/dogs_vs_cats_small/test/ in sorted order;
the image size the checkpoint was trained at. The explained class is each image's predicted
class (for the binary sigmoid models: the signed logit, see ``jaxvision.interpret.gradcam``).
Writes ``<image>_gradcam.png`` (heatmap over the image, titled with the predicted class and
its probability), ``<image>_overlay.png`` (the bare overlay at image size) and
``metrics.json``.
"""


import numpy as np
from PIL import Image

import _ch10
import _common
from jaxvision.data.image_io import load_rgb
from jaxvision.interpret import default_layer, grad_cam, overlay_heatmap, save_titled_image
from jaxvision.train import predict


def main(argv: list[str] | None = None) -> dict:
    p = _ch10.parser(__doc__, "ch10_gradcam", "runs/ch09_mini_xception/checkpoint")
    p.add_argument("--per-class", type=int, default=3)
    p.add_argument("--class-names", default="cat,dog", help="comma-separated, in output order")
    args = p.parse_args(argv)
    if args.layer and len(args.layer) > 1:
        p.error("--layer: Grad-CAM explains one layer at a time")
    model = _ch10.load_model(args.checkpoint)
    size = _ch10.image_size(args)
    class_names = args.class_names.split(",")
    paths = args.image or [f for label in class_names for f in _ch10.test_images(args, label, args.per_class)]
    images = np.stack([_ch10.load_image(path, size) for path in paths])
    shapes = model.layer_shapes(images.shape)
    layer = args.layer[0] if args.layer else default_layer(model, images.shape)

    outputs = predict(model, images)
    if outputs.shape[-1] == 1:  # a sigmoid: P(class 1)
        predicted = (outputs[:, 0] >= 0.5).astype(int)
        probability = np.where(predicted == 1, outputs[:, 0], 1 - outputs[:, 0])
    else:
        predicted, probability = outputs.argmax(-1), outputs.max(-1)
    with _common.Timer() as timer:
        heatmaps = grad_cam(model, images, layer)

    results = []
    for path, heatmap, cls, prob in zip(paths, heatmaps, predicted, probability):
        name = class_names[cls] if cls < len(class_names) else str(cls)
        # As the book does, the heatmap goes over the original photo, not the model's input.
        overlay = overlay_heatmap(load_rgb(path), heatmap)
        stem = path.stem.replace(".", "_")
        bare = args.out / f"{stem}_overlay.png"
        bare.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(overlay).save(bare)
        title = f"{path.parent.name} → {name} ({prob:.2f})"  # true folder → predicted (probability)
        titled = save_titled_image(overlay, args.out / f"{stem}_gradcam.png", title)
        peak = np.unravel_index(heatmap.argmax(), heatmap.shape)
        results.append({"image": str(path), "label": path.parent.name, "predicted": name,
                        "probability": float(prob), "heatmap_shape": list(heatmap.shape),
                        "heatmap_peak": [int(i) for i in peak], "png": str(titled), "overlay": str(bare)})
        print(f"{path.name}: {name} ({prob:.2f}), heatmap peak at {tuple(int(i) for i in peak)}")
    metrics = {"experiment": "ch10_gradcam", "checkpoint": str(args.checkpoint), "layer": layer,
               "layer_shape": list(shapes[layer]), "image_size": size, "images": results,
               "seconds": timer.seconds}
    return _common.write_metrics(args, metrics)


if __name__ == "__main__":
    _common.run(main)
