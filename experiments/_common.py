"""Plumbing shared by the experiment scripts: flags, profiles, output folder, metrics.json."""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxvision.data import data_root  # noqa: F401  (re-exported for the scripts)
from jaxvision.layers import global_policy, set_global_policy
from jaxvision.train import device_description  # noqa: F401


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The flags every experiment takes. Flags left unset take the profile's value."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $JAXVISION_DATA/...)")
    p.add_argument("--out", type=Path, default=Path("runs") / name, help="receives metrics.json, figures, checkpoints")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "mixed_bfloat16", "bfloat16"), default=None,
                   help="dtype policy of the model (default: the profile's, else float32); "
                        "mixed_bfloat16 computes in bfloat16 with float32 weights, for GPUs/TPUs")
    return p


def apply_profile(args: argparse.Namespace, profiles: dict[str, dict]) -> argparse.Namespace:
    """Fill every flag the user left as None from ``profiles[args.profile]``, and set the dtype
    policy (``--dtype``, else the profile's ``"dtype"``, else float32) the run's models are built with."""
    for key, value in {"dtype": "float32", **profiles[args.profile]}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    set_global_policy(args.dtype)
    return args


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_metrics(out: Path, metrics: dict) -> Path:
    """Write ``out/metrics.json`` atomically (a killed run never leaves half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    path, tmp = out / "metrics.json", out / "metrics.json.tmp"
    metrics = {**metrics, "dtype_policy": global_policy().name}
    tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
