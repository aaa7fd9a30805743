"""Write the attribution reference fixture from pytorch-grad-cam and Captum.

Run by hand, in a throwaway Python 3.11 environment with torch (never in CI):

    python3.11 -m venv /tmp/attribution_ref
    /tmp/attribution_ref/bin/pip install torch==2.13.0 numpy scipy scikit-learn matplotlib tqdm \
        opencv-python-headless
    /tmp/attribution_ref/bin/pip install --no-deps grad-cam==1.5.7 captum==0.9.0 ttach==0.0.3
    /tmp/attribution_ref/bin/python tests/interpret/make_attribution_fixtures.py

It draws the weights of a small convnet (numpy, seeded), builds its torch twin (NCHW, the
same weights) and saves to ``attribution_reference.npz``: the weights in jaxvision's layout
(HWIO kernels, (in, out) dense), two 14 × 14 images, and, for two sets of target classes,

* every CAM of pytorch-grad-cam 1.5.7 at the last conv's ReLU (4 × 4), min-max scaled as the
  library returns it (the map is kept at the layer's size: ``get_target_width_height`` is
  overridden, so no cv2 resize is involved), and EigenCAM's signed projection;
* Captum 0.9.0's ``Saliency(abs=False)``, ``InputXGradient``, ``GuidedBackprop``,
  ``IntegratedGradients`` (16 steps, Gauss–Legendre and trapezoid, baselines 0 and 0.5, with
  the convergence delta) and ``Occlusion`` (4 × 4 windows over all channels, stride 2);
* pytorch-grad-cam's ROAD (MoRF and LeRF at percentiles 20, 50, 80, and ``ROADCombined``)
  for a fixed 14 × 14 map, the imputer's noise set to 0 (the only random part).

The jaxvision model (tests/interpret/test_attribution_references.py) is

    Sequential([("features", Sequential([Conv2D(3, 6, 3, relu), MaxPooling2D(2), Conv2D(6, 8, 3, relu)])),
                GlobalAveragePooling2D(), Dense(8, 4)])       # logits

pytorch-grad-cam imports torchvision only for utilities these references do not use, and
PyPI's torchvision does not load beside the CPU torch, so stand-in modules are installed first.
"""

import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
CLASSES = {"top": None, "chosen": [2, 0]}  # None: each image's predicted class


def install_torchvision_stand_in() -> None:
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.Compose = transforms.Normalize = transforms.ToTensor = None
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.resize = None
    ops = types.ModuleType("torchvision.ops")
    ops.box_iou = None
    root.transforms, root.ops, transforms.functional = transforms, ops, functional
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional, "torchvision.ops": ops})


install_torchvision_stand_in()
import pytorch_grad_cam as cams  # noqa: E402
from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Occlusion, Saliency  # noqa: E402
from pytorch_grad_cam.metrics.road import (ROADCombined, ROADLeastRelevantFirst,  # noqa: E402
                                           ROADMostRelevantFirst)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection  # noqa: E402


def weights() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    return {"conv1_kernel": 0.4 * rng.randn(3, 3, 3, 6), "conv1_bias": 0.1 * rng.randn(6),
            "conv2_kernel": 0.3 * rng.randn(3, 3, 6, 8), "conv2_bias": 0.1 * rng.randn(8),
            "dense_kernel": 0.8 * rng.randn(8, 4), "dense_bias": 0.1 * rng.randn(4)}


def torch_twin(w: dict[str, np.ndarray]) -> torch.nn.Sequential:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(6, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4))
    with torch.no_grad():
        for index, name in ((0, "conv1"), (3, "conv2")):
            model[index].weight.copy_(torch.from_numpy(w[f"{name}_kernel"].transpose(3, 2, 0, 1)))
            model[index].bias.copy_(torch.from_numpy(w[f"{name}_bias"]))
        model[7].weight.copy_(torch.from_numpy(w["dense_kernel"].T))
        model[7].bias.copy_(torch.from_numpy(w["dense_bias"]))
    return model.eval()


def nhwc(attribution: torch.Tensor) -> np.ndarray:
    return attribution.detach().numpy().transpose(0, 2, 3, 1)


CAM_METHODS = {"grad_cam": cams.GradCAM, "grad_cam_plus_plus": cams.GradCAMPlusPlus, "xgrad_cam": cams.XGradCAM,
               "hires_cam": cams.HiResCAM, "layer_cam": cams.LayerCAM, "eigen_cam": cams.EigenCAM,
               "score_cam": cams.ScoreCAM, "ablation_cam": cams.AblationCAM}


def main() -> None:
    torch.manual_seed(0)
    w = {k: v.astype(np.float32) for k, v in weights().items()}
    model = torch_twin(w)
    images = np.random.RandomState(1).uniform(0, 1, (2, 14, 14, 3)).astype(np.float32)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    logits = model(x).detach().numpy()
    # EigenCAM's signed projection (the SVD's sign is LAPACK's choice; the test applies jaxvision's rule).
    out = {**w, "images": images, "logits": logits, "eigen_projection": get_2d_projection(model[:5](x).detach().numpy())}
    for case, chosen in CLASSES.items():
        classes = logits.argmax(-1) if chosen is None else np.array(chosen)
        out[f"{case}/classes"] = classes
        targets = [ClassifierOutputTarget(int(c)) for c in classes]
        for name, cls in CAM_METHODS.items():
            cam = cls(model=model, target_layers=[model[4]])
            cam.get_target_width_height = lambda tensor: (4, 4)  # keep the layer's resolution
            out[f"{case}/{name}"] = cam(input_tensor=x, targets=targets)
        target = torch.from_numpy(classes)
        out[f"{case}/gradients"] = nhwc(Saliency(model).attribute(x, target=target, abs=False))
        out[f"{case}/gradient_times_input"] = nhwc(InputXGradient(model).attribute(x, target=target))
        out[f"{case}/guided_backprop"] = nhwc(GuidedBackprop(model).attribute(x, target=target))
        for rule in ("gausslegendre", "riemann_trapezoid"):
            for baseline in (0.0, 0.5):
                ig, delta = IntegratedGradients(model).attribute(x, baselines=baseline, target=target, n_steps=16,
                                                                 method=rule, return_convergence_delta=True)
                out[f"{case}/integrated_gradients/{rule}/{baseline}"] = nhwc(ig)
                out[f"{case}/integrated_gradients/{rule}/{baseline}/delta"] = delta
        out[f"{case}/occlusion"] = nhwc(Occlusion(model).attribute(x, sliding_window_shapes=(3, 4, 4),
                                                                   strides=(3, 2, 2), baselines=0.0, target=target))
    # ROAD on a fixed smooth map with distinct values (percentile thresholds without ties).
    rows, cols = np.mgrid[0:14, 0:14]
    road_maps = np.stack([np.exp(-((rows - 4.3) ** 2 + (cols - 9.1) ** 2) / 18) + 1e-3 * rows + 1e-4 * cols,
                          np.exp(-((rows - 9.7) ** 2 + (cols - 3.2) ** 2) / 30) + 1e-3 * cols + 1e-4 * rows])
    road_maps = (road_maps / road_maps.max(axis=(1, 2), keepdims=True)).astype(np.float32)
    classes = out["chosen/classes"]
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    out["road/maps"] = road_maps
    for order, metric in (("morf", ROADMostRelevantFirst), ("lerf", ROADLeastRelevantFirst)):
        scores = []
        for percentile in (20, 50, 80):
            road = metric(percentile)
            road.perturbation.imputer.noise = 0.0
            scores.append(road(x, road_maps, targets, model))
        out[f"road/{order}"] = np.stack(scores, axis=1)
    combined = ROADCombined(percentiles=[20, 50, 80])
    for averager in (combined.morf_averager, combined.lerf_averager):
        wrapped = averager.imputer

        def noiseless(percentile, wrapped=wrapped):
            road = wrapped(percentile)
            road.perturbation.imputer.noise = 0.0
            return road
        averager.imputer = noiseless
    out["road/combined"] = combined(x, road_maps, targets, model)
    out = {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in out.items()}
    np.savez_compressed(HERE / "attribution_reference.npz", **{k: v.astype(np.float32) if v.dtype == np.float64
                                                                else v for k, v in out.items()})
    print(f"wrote {HERE / 'attribution_reference.npz'}: {len(out)} arrays")


if __name__ == "__main__":
    main()
