"""Port check without accelerators, and what each book experiment would cost on one.

    python bench/port_check.py                     # make port-check: every model, then the estimates (~1 min)
    python bench/port_check.py --estimates-only --markdown BENCHMARKS.md   # the table, into BENCHMARKS.md
    python bench/port_check.py --estimates-only --measured runs/book_gpu/summary.json  # beside a GPU run

1. For every registered model, ``jaxvision.port.check`` (what ``python -m jaxvision.port`` runs
   for any model): ``fit``'s train step (forward, loss, backward, Adam, metrics) and
   ``predict`` in float32 and ``mixed_bfloat16``, data-parallel over an abstract 8-device mesh,
   are exported with ``jax.export`` for ("tpu", "cuda"). Lowering only: a model that does not
   lower is named with its error and the exit status is 1.
2. For every experiment's ``book`` profile, XLA's FLOPs and bytes accessed for one train step
   compiled for this CPU, and the roofline **estimates** of the step and of the whole profile on an H100, H200, TPU v5e and v6e
   (published peaks in ``jaxvision.train.cost.CHIPS``). Estimates, not measurements: see that
   module for what they leave out.
"""

import argparse
import contextlib
import io
import json
import re
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "experiments")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jaxvision.layers import policy_scope  # noqa: E402
from jaxvision.models import build_model  # noqa: E402
from jaxvision.port import MESH, PLATFORMS, POLICIES, PortCheck, check  # noqa: E402, F401 (tests import MESH)
from jaxvision.train.cost import CHIPS, lower_train_step, profile_seconds, step_cost  # noqa: E402
# Every registered model at a small size: name → (builder arguments, one 8-device batch, loss, labels)
MODELS = {
    "mnist_convnet": ({}, (8, 28, 28, 1), "sparse_categorical_crossentropy", (8,)),
    "dogs_vs_cats_convnet": ({"augmented": True}, (8, 80, 80, 3), "binary_crossentropy", (8,)),
    "residual_convnet": ({}, (8, 32, 32, 3), "binary_crossentropy", (8,)),
    "mini_xception": ({}, (8, 64, 64, 3), "binary_crossentropy", (8,)),
    "segmentation_model": ({"image_size": [32, 32]}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8, 32, 32)),
    "residual_segmentation_model": ({"image_size": [32, 32]}, (8, 32, 32, 3), "sparse_categorical_crossentropy",
                                    (8, 32, 32)),
    "mobilenet": ({"alpha": 0.25, "classes": 10}, (8, 64, 64, 3), "sparse_categorical_crossentropy", (8,)),
    "mobilenet_unet": ({"alpha": 0.25}, (8, 64, 64, 3), "sparse_categorical_crossentropy", (8, 64, 64)),
    "xception": ({"classes": 10}, (8, 71, 71, 3), "sparse_categorical_crossentropy", (8,)),
    "vgg": ({"classes": 10, "input_shape": [32, 32, 3]}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)),
    "resnet": ({"classes": 10}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)),
    "resnet_v2": ({"classes": 10}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)),
    "densenet": ({"classes": 10}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)),
    "inception_v3": ({"classes": 10}, (8, 75, 75, 3), "sparse_categorical_crossentropy", (8,)),
    "inception_resnet_v2": ({"classes": 10}, (8, 75, 75, 3), "sparse_categorical_crossentropy", (8,)),
    "mobilenet_v2": ({"alpha": 0.35, "classes": 10}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)),
}
# The depthwise and modern applications (issue 30), 10 classes at 32 x 32.
MODERN = ["mobilenet_v3_small", "mobilenet_v3_large"] + [f"efficientnet_b{i}" for i in range(8)]
MODERN += [f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")]
MODERN += [f"convnext_{v}" for v in ("tiny", "small", "base", "large", "xlarge")] + ["nasnet_mobile", "nasnet_large"]
MODELS |= {name: ({"classes": 10}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8,)) for name in MODERN}
# Lowered by make port-check only; the test suite lowers MobileNetV3Small for all of them
# (Functional graph, depthwise, squeeze-and-excitation): on the shared 2-core CPU each of these
# took 50-115 s to lower in the suite (all lowered for tpu and cuda in both policies).
# The same for the largest classic graphs; VGG and ResNet stay in the suite.
PORT_CHECK_ONLY = ({"mobilenet_v2", *MODERN} - {"mobilenet_v3_small"}) | {"resnet_v2", "densenet", "inception_v3",
                                                                          "inception_resnet_v2"}
# Step-cost rows for the modern backbones: listing 8.29's fine-tuning (ch08_pretrained's
# finetune profile) with each as the backbone (estimates only; the experiment runs MobileNet/Xception).
FINETUNE_BACKBONES = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
# The data each book profile trains on: (train, validation) examples.
DOGS_VS_CATS, MNIST, HORSES = (2000, 1000), (60000, 0), (236, 42)


def port_check(name: str, policies=POLICIES) -> PortCheck:
    """``jaxvision.port.check`` of model ``name`` at its small size, without estimates (the
    book profiles' come from ``estimate``)."""
    kwargs, shape, loss, label_shape = MODELS[name]
    return check(lambda: build_model(name, **kwargs), input_shape=shape[1:], batch_size=shape[0], loss=loss,
                 label_shape=label_shape[1:], policies=policies, estimate=False, name=name)


def export_steps(name: str, policy: str):
    """``(train, predict)``: ``jax.export.Exported`` of fit's train step and of predict for
    model ``name`` (at its small size) over the abstract 8-device mesh."""
    return port_check(name, (policy,)).exported[policy]


def experiments() -> dict:
    """Experiment → (registered model it trains, abstract model builder, loss, label shape per
    example, label dtype, book profile, data)."""
    import ch08_dogs_vs_cats
    import ch08_mnist_convnet
    import ch08_pretrained
    import ch09_mini_xception
    import ch09_residual_blocks
    import ch11_segmentation

    def pretrained(finetune: bool, backbone: str = "mobilenet"):
        def build():
            from argparse import Namespace

            from jaxvision.applications import mobilenet, xception
            from jaxvision.layers import unfreeze_except_batchnorm

            original, quiet = ch08_pretrained.backbone, contextlib.redirect_stdout(io.StringIO())
            ch08_pretrained.backbone = (lambda args: mobilenet(alpha=0.75, include_top=False) if backbone == "mobilenet"
                                        else xception(include_top=False) if backbone == "xception"
                                        else build_model(backbone, include_top=False))
            try:
                with quiet:  # classifier() prints listing 8.29's counts
                    model = ch08_pretrained.classifier(Namespace(seed=0, image_size=180))
            finally:
                ch08_pretrained.backbone = original
            if finetune:
                unfreeze_except_batchnorm(model.backbone)
            return model
        return build

    book = {name: profiles["book"] for name, profiles in ch08_dogs_vs_cats.PROFILES.items()}
    segmentation = ch11_segmentation.PROFILES["book"]
    size = segmentation["image_size"]
    binary = ("binary_crossentropy", (1,), jnp.float32)
    pixels = ("sparse_categorical_crossentropy", (size, size), jnp.int32, segmentation, HORSES)
    unet_profile = ch11_segmentation.UNET_PROFILES["book"]
    unet_size = unet_profile["image_size"]

    def unet():
        from jaxvision.layers import unfreeze_except_batchnorm

        model = build_model("mobilenet_unet", alpha=0.75)
        unfreeze_except_batchnorm(model.encoder)
        return model
    modern = {f"ch08_pretrained_finetune --backbone {name} (estimate only)": (
        name, pretrained(True, name), *binary, ch08_pretrained.PROFILES["finetune"]["book"], DOGS_VS_CATS)
        for name in FINETUNE_BACKBONES}
    return modern | {
        "ch08_mnist_convnet": ("mnist_convnet", lambda: build_model("mnist_convnet"),
                               "sparse_categorical_crossentropy", (), jnp.int32,
                               {**ch08_mnist_convnet.PROFILES["book"], "image_size": 28, "channels": 1}, MNIST),
        "ch08_dogs_vs_cats_scratch": ("dogs_vs_cats_convnet", lambda: build_model("dogs_vs_cats_convnet"), *binary,
                                      book["scratch"], DOGS_VS_CATS),
        "ch08_dogs_vs_cats_augmented": ("dogs_vs_cats_convnet",
                                        lambda: build_model("dogs_vs_cats_convnet", augmented=True), *binary,
                                        book["augmented"], DOGS_VS_CATS),
        "ch08_pretrained_augmented": ("mobilenet", pretrained(False), *binary,
                                      ch08_pretrained.PROFILES["augmented"]["book"], DOGS_VS_CATS),
        "ch08_pretrained_finetune": ("mobilenet", pretrained(True), *binary,
                                     ch08_pretrained.PROFILES["finetune"]["book"], DOGS_VS_CATS),
        "ch08_pretrained_augmented --backbone xception": (
            "xception", pretrained(False, "xception"), *binary, ch08_pretrained.PROFILES["augmented"]["book"],
            DOGS_VS_CATS),
        "ch08_pretrained_finetune --backbone xception": (
            "xception", pretrained(True, "xception"), *binary, ch08_pretrained.PROFILES["finetune"]["book"],
            DOGS_VS_CATS),
        "ch09_residual_blocks": ("residual_convnet", lambda: build_model("residual_convnet"), *binary,
                                 ch09_residual_blocks.PROFILES["book"], DOGS_VS_CATS),
        "ch09_mini_xception": ("mini_xception", lambda: build_model("mini_xception"), *binary,
                               ch09_mini_xception.PROFILES["book"], DOGS_VS_CATS),
        "ch11_segmentation": ("segmentation_model",
                              lambda: build_model("segmentation_model", image_size=[size, size]), *pixels),
        "ch11_segmentation_improved": ("residual_segmentation_model",
                                       lambda: build_model("residual_segmentation_model", image_size=[size, size]),
                                       *pixels),
        # Priced as if every epoch fine-tuned the whole model (the frozen-encoder epochs cost less).
        "ch11_segmentation_unet": ("mobilenet_unet", unet,
                                   "sparse_categorical_crossentropy", (unet_size, unet_size), jnp.int32,
                                   {**unet_profile, "epochs": unet_profile["frozen_epochs"] + unet_profile["epochs"]},
                                   HORSES),
    }


def estimate(name: str, spec, *, policy: str = "float32") -> dict:
    model_name, build, loss, label_shape, label_dtype, profile, (train, validation) = spec
    batch, size = profile["batch_size"], profile["image_size"]
    with policy_scope(policy):
        model = nnx.eval_shape(build)
    steps, args = lower_train_step(model, loss=loss, input_shape=(batch, size, size, profile.get("channels", 3)),
                                   label_shape=(batch, *label_shape), label_dtype=label_dtype)
    cost = step_cost(steps, args, compile=True)
    row = {"experiment": name, "model": model_name, "epochs": profile["epochs"], "batch_size": batch, "image_size": size,
           "train_examples": train, "validation_examples": validation, "policy": policy,
           "gflop_per_step": cost.flops / 1e9,
           "gbytes_per_step": cost.bytes_accessed / 1e9}
    for key, chip in CHIPS.items():
        row[f"step_ms {key}"] = 1e3 * cost.seconds(chip, policy)
        row[f"profile_s {key}"] = profile_seconds(cost, chip, epochs=profile["epochs"], train_examples=train,
                                                  batch_size=batch, validation_examples=validation, policy=policy)
    return row


def markdown(rows: list[dict]) -> str:
    chips = list(CHIPS)
    lines = ["Estimates, not measurements: the roofline bound max(FLOPs / peak, bytes / bandwidth), with the "
             "bytes of the step compiled for this CPU (XLA fuses more for a GPU or a TPU, so the memory term is "
             f"pessimistic) and validation counted as a third of a train step per batch; peaks from {', '.join(c.source for c in CHIPS.values())}. "
             f"Counted by XLA on {jax.devices()[0].device_kind} with jax {jax.__version__}, float32 steps "
             "(JAX's default precision: TF32 on the GPUs, one bfloat16 pass on the TPUs).", "",
             "| experiment (book profile) | epochs | batch | size | GFLOP/step | GB/step | "
             + " | ".join(f"step ms {c}" for c in chips) + " | " + " | ".join(f"profile {c}" for c in chips) + " |",
             "|---|---|---|---|---|---|" + "---|" * (2 * len(chips))]
    for r in rows:
        lines.append(f"| {r['experiment']} | {r['epochs']} | {r['batch_size']} | {r['image_size']} | "
                     f"{r['gflop_per_step']:.1f} | {r['gbytes_per_step']:.2f} | "
                     + " | ".join(f"{r[f'step_ms {c}']:.2f}" for c in chips) + " | "
                     + " | ".join(_duration(r[f"profile_s {c}"]) for c in chips) + " |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_section(path: Path, text: str) -> None:
    """Replace the text between the step-cost markers of ``path`` (appended when absent). Table
    rows already there whose experiment ``text`` does not price again are kept, in their place,
    so ``--models`` refreshes some rows without dropping the others."""
    begin, end = "<!-- step-cost estimates: begin -->", "<!-- step-cost estimates: end -->"
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + "(.*?)" + re.escape(end), re.S)
    found = pattern.search(old)
    if found:
        text = _merge_rows(found.group(1), text)
    block = f"{begin}\n{text}\n{end}"
    path.write_text(pattern.sub(lambda _: block, old) if found else old.rstrip() + "\n\n" + block + "\n")


def _merge_rows(old: str, new: str) -> str:
    """``new`` with its table's rows merged into ``old``'s table, keyed by the first cell."""
    def rows(text: str) -> dict[str, str]:
        lines = [line for line in text.splitlines() if line.startswith("| ")]
        return {line.split("|")[1].strip(): line for line in lines[1:]}  # lines[0] is the header
    old_rows, new_rows = rows(old), rows(new)
    merged = {**old_rows, **new_rows}  # old order first, replaced in place; new experiments last
    lines = [line for line in new.splitlines()
             if not line.startswith("| ") or line.split("|")[1].strip() not in new_rows]
    return "\n".join(lines + list(merged.values()))


def report(rows: list[dict], measured: dict[str, float]) -> list[str]:
    """One line per experiment: its step's cost and estimated book-profile time, and the
    measured wall time of that experiment when a run_all summary gives one."""
    lines = []
    for r in rows:
        line = (f"  {r['experiment']}: {r['gflop_per_step']:.1f} GFLOP, {r['gbytes_per_step']:.2f} GB a step; "
                "estimated book profile: " + ", ".join(f"{c} {_duration(r[f'profile_s {c}'])}" for c in CHIPS))
        if r["experiment"] in measured:
            line += f"; measured {_duration(measured[r['experiment']])} (the whole script, compilation included)"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--estimates-only", action="store_true", help="skip the lowering checks")
    p.add_argument("--markdown", type=Path, default=None, help="write the estimates table into this file")
    p.add_argument("--measured", type=Path, default=None, help="a run_all summary.json to print beside the estimates")
    args = p.parse_args(argv)
    measured, device = {}, None
    if args.measured is not None:
        summary = json.loads(args.measured.read_text())
        measured, device = {r["experiment"]: r["seconds"] for r in summary["rows"]}, summary.get("device")
        print(f"measured on {device}")
    specs, rows, failures = experiments(), [], 0
    for name in args.models:
        if not args.estimates_only:
            start = time.perf_counter()
            try:
                verdict = str(port_check(name))
            except Exception as error:
                failures += 1
                verdict = f"{name}: FAILS: {' '.join(str(error).split())[:300]}"
            print(f"{verdict} ({time.perf_counter() - start:.1f} s)", flush=True)
        for experiment, spec in specs.items():
            if spec[0] == name:
                rows.append(estimate(experiment, spec))
                print("\n".join(report(rows[-1:], measured)), flush=True)
    if args.markdown is not None:
        write_section(args.markdown, markdown(rows))
        print(f"wrote the estimates into {args.markdown}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
