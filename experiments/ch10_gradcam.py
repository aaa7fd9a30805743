"""DLwP listings 10.17–10.25: Grad-CAM class-activation heatmaps.

Run:
    python experiments/ch10_gradcam.py [--image FILE ...] [--layer NAME] [--image-size 224]
        [--top 5] [--score probability|logit] [--out runs/ch10_gradcam]
        [--backbone xception --weights xception_weights_tf_dim_ordering_tf_kernels.h5]
    python experiments/ch10_gradcam.py --checkpoint runs/ch09_mini_xception/checkpoint
        [--layer NAME] [--image FILE ...] [--per-class 3] [--image-size N] [--class-names cat,dog]

Default (the book's figure 10.9): the pretrained ImageNet MobileNet α 0.75 (Keras's weights,
offline) on $JAXVISION_DATA/images/elephant.jpg, resized to 224 × 224 as
``keras.utils.load_img(..., interpolation="bilinear")`` does and preprocessed by
``preprocess_input``; prints the top 5 decoded predictions and the argmax index, as the book
does (386, African elephant, under its Xception), and explains the top class at
``conv_pw_13_relu``, the last conv activation. ``--backbone xception --weights PATH`` runs the
book's own model (Keras's or KerasHub's ImageNet Xception file) at 299 × 299 and
``block14_sepconv2_act``, the book's ``last_conv_layer_name``. As listings 10.19 and 10.22 do (the classifier
is built with ``activation="softmax"``, "so our outputs are probabilities"), the class score
is the top class's softmax *probability*, whose gradient includes the softmax Jacobian;
``--score logit`` builds the model with ``classifier_activation=None`` and differentiates the
logit instead (another heatmap). Writes ``<image>_heatmap.png``
(the 7 × 7 heatmap, viridis, one 32-pixel square per cell), ``<image>_gradcam.png`` (the
heatmap superimposed on the original photo at its original size) and ``metrics.json``.

With ``--checkpoint`` (a model the ch. 8/9 scripts trained): by default the model's last
(N, H, W, C) layer with more than one position (listing 10.19's "last conv layer"; Grad-CAM on a
1 × 1 map is uniform, so such a --layer gets a warning); the first ``--per-class`` cats and dogs of
$JAXVISION_DATA/dogs_vs_cats_small/test/ in sorted order; the image size the checkpoint was
trained at. The explained class is each image's predicted class (for the binary sigmoid
models: the signed logit, see ``jaxvision.interpret.gradcam``). Writes
``<image>_gradcam.png`` (heatmap over the image, titled with the predicted class and its
probability), ``<image>_overlay.png`` (the bare overlay at image size) and ``metrics.json``.
"""

import argparse
from pathlib import Path

import jax
import numpy as np
from PIL import Image

import _ch10
import _common
from jaxvision.data.image_io import load_rgb
from jaxvision.interpret import default_layer, grad_cam, overlay_heatmap, save_matshow, save_titled_image
from jaxvision.train import predict

IMAGENET_LAYER = {"mobilenet": "conv_pw_13_relu", "xception": "block14_sepconv2_act"}  # the last conv activation


def imagenet_gradcam(args: argparse.Namespace) -> dict:
    from jaxvision.applications import decode_predictions, preprocess_input

    logits = args.score == "logit"
    backbone = args.backbone or "mobilenet"
    model = _ch10.pretrained(args, classifier_activation=None if logits else "softmax")
    size = args.image_size or _ch10.PRETRAINED_IMAGE_SIZE[backbone]
    paths = args.image or [_common.data_root() / "images" / "elephant.jpg"]
    images = preprocess_input(np.stack([_ch10.load_photo(path, size) for path in paths]))
    outputs = predict(model, images)
    probabilities = np.asarray(jax.nn.softmax(outputs, axis=-1)) if logits else outputs
    layer = args.layer[0] if args.layer else IMAGENET_LAYER[backbone]
    with _common.Timer() as timer:
        heatmaps = grad_cam(model, images, layer)
    results = []
    for path, heatmap, top, scores in zip(paths, heatmaps, decode_predictions(probabilities, top=args.top),
                                          probabilities):
        _common.say(f"{path.name}: " + ", ".join(f"{name} {p:.3f}" for _, name, p in top))
        argmax = int(np.argmax(scores))  # the book's np.argmax(preds[0])
        _common.say(f"{path.name}: argmax index {argmax}")
        stem = path.stem.replace(".", "_")
        overlay = overlay_heatmap(load_rgb(path), heatmap)  # on the original photo, at its size
        args.out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(overlay).save(args.out / f"{stem}_gradcam.png")
        results.append({"image": str(path), "top": [[wnid, name, float(p)] for wnid, name, p in top], "argmax": argmax,
                        "heatmap": np.round(heatmap, 6).tolist(), "overlay": str(args.out / f"{stem}_gradcam.png"),
                        "heatmap_png": str(save_matshow(heatmap, args.out / f"{stem}_heatmap.png", cell=32))})
    metrics = {"experiment": "ch10_gradcam", "model": _ch10.pretrained_name(args),
               "layer": layer, "layer_shape": list(model.layer_shapes(images.shape)[layer]), "image_size": size,
               "score": args.score,
               "images": results, "seconds": timer.seconds}
    return _common.write_metrics(args, metrics)


def checkpoint_gradcam(args: argparse.Namespace) -> dict:
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


def main(argv: list[str] | None = None) -> dict:
    p = _ch10.parser(__doc__, "ch10_gradcam", None)
    p.add_argument("--top", type=int, default=5, help="ImageNet model: decoded predictions to print (the book's 5)")
    p.add_argument("--per-class", type=int, default=3, help="with --checkpoint: test images per class")
    p.add_argument("--class-names", default="cat,dog", help="with --checkpoint: comma-separated, in output order")
    p.add_argument("--score", choices=("probability", "logit"), default="probability",
                   help="ImageNet model: differentiate the top class's softmax probability (the book's) or its logit")
    args = p.parse_args(argv)
    if args.layer and len(args.layer) > 1:
        p.error("--layer: Grad-CAM explains one layer at a time")
    _ch10.check_backbone(args)
    return checkpoint_gradcam(args) if args.checkpoint else imagenet_gradcam(args)


if __name__ == "__main__":
    _common.run(main)
