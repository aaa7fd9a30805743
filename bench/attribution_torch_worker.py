"""The torch side of bench/bench_attribution.py: pytorch-grad-cam's ScoreCAM and Captum's
IntegratedGradients and NoiseTunnel(Saliency) on the benchmark convnet's torch twin.

Run by bench_attribution.py under the reference environment's Python (torch CPU, grad-cam,
captum: tests/interpret/make_attribution_fixtures.py says how it is made):
``python attribution_torch_worker.py WEIGHTS.npz THREADS``. Prints one JSON line of versions,
then answers each command read from stdin (``score_cam``, ``integrated_gradients``,
``smooth_grad``) with the seconds it took.
"""

import json
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests" / "interpret"))
from make_attribution_fixtures import install_torchvision_stand_in  # noqa: E402

install_torchvision_stand_in()
import captum  # noqa: E402
import pytorch_grad_cam  # noqa: E402
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency  # noqa: E402
from pytorch_grad_cam import ScoreCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402


def twin(weights: dict) -> torch.nn.Sequential:
    layers, channels = [], 3
    convs = sorted(k for k in weights if k.startswith("conv") and k.endswith("_kernel"))
    for i, name in enumerate(convs):
        kernel = weights[name]
        conv = torch.nn.Conv2d(channels, kernel.shape[-1], 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.from_numpy(weights[name.replace("kernel", "bias")]))
        layers += [conv, torch.nn.ReLU()] + ([torch.nn.MaxPool2d(2)] if i < len(convs) - 1 else [])
        channels = kernel.shape[-1]
    dense = torch.nn.Linear(channels, weights["dense_kernel"].shape[1])
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(weights["dense_kernel"].T))
        dense.bias.copy_(torch.from_numpy(weights["dense_bias"]))
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), dense).eval()


def main() -> None:
    with np.load(sys.argv[1]) as data:
        weights = dict(data)
    torch.set_num_threads(int(sys.argv[2]))
    model = twin(weights)
    x = torch.from_numpy(weights["images"].transpose(0, 3, 1, 2).copy())
    classes = torch.from_numpy(weights["classes"].astype(np.int64))
    sigma = float(weights["sigma"])
    steps, samples, chunk = (int(weights[k]) for k in ("ig_steps", "samples", "chunk"))
    cam = ScoreCAM(model=model, target_layers=[model[-4]])  # the last conv's ReLU
    cam.batch_size = chunk
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    runs = {
        "score_cam": lambda: cam(input_tensor=x, targets=targets),
        "integrated_gradients": lambda: IntegratedGradients(model).attribute(x, baselines=0.0, target=classes,
                                                                             n_steps=steps),
        "smooth_grad": lambda: NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=samples,
                                                                      stdevs=sigma, target=classes, abs=False),
    }
    print(json.dumps({"torch": torch.__version__, "grad-cam": pytorch_grad_cam.__version__ if hasattr(
        pytorch_grad_cam, "__version__") else "1.5.7", "captum": captum.__version__, "threads": torch.get_num_threads()}),
        flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        runs[line.strip()]()
        print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main()
