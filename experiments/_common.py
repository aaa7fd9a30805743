"""Plumbing shared by the experiment scripts: flags, profiles, the run folder and its
lifecycle (finished runs are not trained again, backups live until metrics.json is written),
metrics.json with what ran it, and one-line errors for user mistakes.

A training run's folder ``<out>/`` holds ``checkpoint/``, ``backup/`` (while unfinished),
``log.csv``, ``logs/`` (TensorBoard), figures and, once finished, ``metrics.json``.
"""

import argparse
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from jaxvision.data import data_root  # noqa: F401  (re-exported for the scripts)
from jaxvision.environment import device_description, library_versions
from jaxvision.layers import global_policy, set_global_policy
from jaxvision.train import BackupAndRestore, Callback, CSVLogger, ModelCheckpoint, TensorBoard
from jaxvision.train.sharding import is_main_process

POLICIES = ("float32", "mixed_bfloat16", "bfloat16")
USER_ERRORS = (OSError, ValueError)  # missing or unreadable files, undecodable data, bad values (named as is)


class UsageError(ValueError):
    """A bad flag or flag value."""


class ArgumentParser(argparse.ArgumentParser):
    """Flag errors raise ``UsageError`` (reported in one line by ``run``), and the
    parsed namespace keeps the exact command (``args.command``) for metrics.json."""

    def error(self, message: str):
        raise UsageError(message)

    def parse_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        parsed = super().parse_args(argv, namespace)
        parsed.command = shlex.join(["python", self.prog, *argv])
        return parsed


def base_parser(doc: str, name: str) -> ArgumentParser:
    """``--out`` and ``--debug``, for every experiment script ``experiments/<name>.py``."""
    p = ArgumentParser(prog=f"experiments/{name}.py", description=doc.splitlines()[0], epilog=doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs") / name, help="receives metrics.json, figures, checkpoints")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def parser(doc: str, name: str) -> ArgumentParser:
    """The flags every training experiment takes. Flags left unset take the profile's value."""
    p = base_parser(doc, name)
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $JAXVISION_DATA/...)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policy", choices=POLICIES, default="float32",
                   help="dtype policy of the models (mixed_bfloat16: bfloat16 arithmetic, float32 weights; "
                        "meant for GPU/TPU book runs)")
    p.add_argument("--distributed", action="store_true",
                   help="one of several processes/hosts: jax.distributed.initialize() from the cluster's environment")
    p.add_argument("--force", action="store_true",
                   help="train again even if <out>/metrics.json says the run is finished")
    return p


def run(main: Callable[[list[str]], object]) -> object:
    """Run ``main(sys.argv[1:])`` as a command: any error prints one line naming the problem and
    exits with status 2 (inputs come from strangers: a damaged checkpoint, an image bomb or a
    malformed weight file raises library errors of every type); ``--debug`` shows the
    traceback instead. Errors other than ``USER_ERRORS`` carry their type in the line."""
    argv = sys.argv[1:]
    try:
        return main(argv)
    except Exception as error:
        if "--debug" in argv:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if not isinstance(error, USER_ERRORS):
            message = f"{type(error).__name__}: {message}"
        print(f"{Path(sys.argv[0]).name}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


def finished(args: argparse.Namespace) -> dict | None:
    """The metrics of the finished run in ``args.out``, or None when it has to run. With
    ``--force`` the run starts over: its backup, logs and metrics.json are deleted first."""
    path = args.out / "metrics.json"
    if args.force:
        for stale in (args.out / "backup", args.out / "logs"):
            shutil.rmtree(stale, ignore_errors=True)
        path.unlink(missing_ok=True)
        return None
    if not path.is_file():
        return None
    say(f"{args.out} is finished (its metrics.json exists); --force trains it again")
    return json.loads(path.read_text())


def callbacks(args: argparse.Namespace, **checkpoint) -> list[Callback]:
    """``ModelCheckpoint(<out>/checkpoint, **checkpoint)``, a CSV log, TensorBoard logs in
    ``<out>/logs`` (with tensorboardX installed) and a backup kept until ``finish``."""
    logs: list[Callback] = [CSVLogger(args.out / "log.csv")]
    try:
        logs.append(TensorBoard(args.out / "logs"))
    except ImportError as error:
        say(f"no TensorBoard logs: {error}")
    return [ModelCheckpoint(args.out / "checkpoint", **checkpoint), *logs,
            BackupAndRestore(args.out / "backup", delete_checkpoint=False)]


def finish(args: argparse.Namespace, metrics: dict) -> dict:
    """Write metrics.json, then delete the backup: only now is the run finished (a run
    killed before this point resumes from its backup, without training again if training
    was over)."""
    metrics = write_metrics(args, metrics)
    if is_main_process():
        shutil.rmtree(args.out / "backup", ignore_errors=True)
    return metrics


def apply_profile(args: argparse.Namespace, profiles: dict[str, dict]) -> argparse.Namespace:
    """Fill every flag the user left as None from ``profiles[args.profile]``, set the dtype
    policy and, with ``--distributed``, join the other processes (before any computation)."""
    if args.distributed:
        jax.distributed.initialize()
    for key, value in profiles[args.profile].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    set_global_policy(args.policy)  # every model this run builds or loads takes it
    return args


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


def write_metrics(args: argparse.Namespace, metrics: dict) -> dict:
    """``metrics`` with the exact command, the device and the library versions, written to
    ``<args.out>/metrics.json`` atomically (a killed run never leaves half a file) by process 0."""
    metrics = {**metrics, "command": args.command, "device": device_description(), "versions": library_versions(),
               "policy": global_policy().name}
    if is_main_process():
        args.out.mkdir(parents=True, exist_ok=True)
        path, tmp = args.out / "metrics.json", args.out / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable) + "\n")
        tmp.replace(path)
    return metrics


class Timer:
    """Wall-clock ``seconds`` and this process's CPU ``cpu_seconds`` (all threads, user + system)
    of a block: on a shared machine the wall time grows with the load, the CPU time much less."""

    def __enter__(self):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start
