"""Plumbing shared by the experiment scripts: flags, profiles, output folder, metrics.json."""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxvision.data import data_root  # noqa: F401  (re-exported for the scripts)
from jaxvision.environment import device_description  # noqa: F401
from jaxvision.train.sharding import is_main_process

POLICIES = ("float32", "mixed_bfloat16")


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The flags every experiment takes. Flags left unset take the profile's value."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $JAXVISION_DATA/...)")
    p.add_argument("--out", type=Path, default=Path("runs") / name, help="receives metrics.json, figures, checkpoints")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policy", choices=POLICIES, default="float32",
                   help="compute dtype policy (mixed_bfloat16 is meant for GPU/TPU book runs)")
    return p


def apply_profile(args: argparse.Namespace, profiles: dict[str, dict]) -> argparse.Namespace:
    """Fill every flag the user left as None from ``profiles[args.profile]``, and set the
    dtype policy."""
    for key, value in profiles[args.profile].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    set_policy(args.policy)
    return args


def set_policy(name: str) -> None:
    """Where the run's compute dtype policy is set (issue 11 item 4 provides the policies;
    until then only ``float32`` exists)."""
    if name != "float32":
        raise SystemExit(f"--policy {name}: this jaxvision has no mixed-precision policy yet; use --policy float32")


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def say(*args, **kwargs) -> None:
    """``print`` on process 0 only (with several processes every one runs the script)."""
    if is_main_process():
        print(*args, **kwargs, flush=True)


def write_metrics(out: Path, metrics: dict) -> Path:
    """Write ``out/metrics.json`` atomically (a killed run never leaves half a file); process 0 only."""
    if not is_main_process():
        return out / "metrics.json"
    out.mkdir(parents=True, exist_ok=True)
    path, tmp = out / "metrics.json", out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
