"""Training checkpoints with orbax-checkpoint, and loading models back from them.

A checkpoint path is a directory managed by ``orbax.checkpoint.CheckpointManager`` keeping
one finished checkpoint, ``<path>/<n>/``, with two items:

* ``arrays``: parameters, non-trainable state (BatchNorm statistics) — both keyed by their
  module path, e.g. ``"conv2d/kernel"`` — and the optimizer state's leaves;
* ``meta`` (JSON): epochs and steps completed, seed, the model's ``build_config``, the
  history and the callbacks' state, i.e. everything needed to resume bit-identically.

Writes are atomic: orbax writes ``<n+1>.orbax-checkpoint-tmp-*`` and renames it when
complete, and only then deletes ``<n>``; readers only see finished checkpoints, so a crash
mid-write leaves the previous checkpoint loadable.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import orbax.checkpoint as ocp
from flax import nnx

from jaxvision.models.registry import rebuild_model

if TYPE_CHECKING:
    from jaxvision.train.trainer import Trainer

FORMAT = "jaxvision.train/1"


def _manager(path: str | os.PathLike, *, create: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False, create=create,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(Path(path).absolute(), options=options,
                                 item_handlers={"arrays": ocp.StandardCheckpointHandler(),
                                                "meta": ocp.JsonCheckpointHandler()})


def flat_arrays(state: nnx.State) -> dict[str, jax.Array]:
    """``{"conv2d/kernel": array, ...}`` for a state of the model."""
    return {"/".join(map(str, path)): var.get_value() for path, var in nnx.to_flat_state(state)}


def with_arrays(state: nnx.State, arrays: dict[str, jax.Array], *, what: str, path: str | os.PathLike) -> nnx.State:
    """``state`` with its values taken from ``arrays``; a clear error if names or shapes differ."""
    expected = {name: (tuple(a.shape), str(a.dtype)) for name, a in flat_arrays(state).items()}
    found = {name: (tuple(a.shape), str(a.dtype)) for name, a in arrays.items()}
    problems = []
    if expected.keys() - found.keys():
        problems.append(f"missing from the checkpoint: {sorted(expected.keys() - found.keys())}")
    if found.keys() - expected.keys():
        problems.append(f"not in the model: {sorted(found.keys() - expected.keys())}")
    problems += [f"{name}: model has shape/dtype {expected[name]}, checkpoint {found[name]}"
                 for name in sorted(expected.keys() & found.keys()) if expected[name] != found[name]]
    if problems:
        raise ValueError(f"checkpoint {path} does not match the model's {what}: " + "; ".join(problems))
    return nnx.from_flat_state([(p, var.replace(arrays["/".join(map(str, p))])) for p, var in nnx.to_flat_state(state)])


def has_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a finished checkpoint."""
    if not Path(path).is_dir():
        return False
    with _manager(path, create=False) as manager:
        return manager.latest_step() is not None


def save(path: str | os.PathLike, trainer: "Trainer") -> None:
    """Write the full training state of ``trainer`` as the newest checkpoint in ``path``."""
    carry = trainer.carry
    arrays = {"params": flat_arrays(carry.params), "state": flat_arrays(carry.state),
              "opt_state": {str(i): leaf for i, leaf in enumerate(jax.tree.leaves(carry.opt_state))}}
    meta = {"format": FORMAT, "epoch": trainer.epoch, "step": trainer.step, "seed": trainer.seed,
            "build_config": getattr(trainer.model, "build_config", None),
            "history": trainer.history.history, "history_epochs": trainer.history.epoch,
            "callbacks": [[type(c).__name__, c.get_state()] for c in trainer.callbacks]}
    with _manager(path, create=True) as manager:
        manager.save((manager.latest_step() or 0) + 1,
                     args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)))


def read(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(arrays, meta)`` of the newest finished checkpoint in ``path``, arrays on the default device."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    with _manager(path, create=False) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"{path} holds no finished checkpoint")
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                                manager.item_metadata(step)["arrays"].tree)
        restored = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract),
                                                                   meta=ocp.args.JsonRestore()))
    if restored["meta"].get("format") != FORMAT:
        raise ValueError(f"{path} is not a jaxvision.train checkpoint (format {restored['meta'].get('format')!r})")
    return restored["arrays"], restored["meta"]


def restore(path: str | os.PathLike, model: nnx.Module) -> nnx.Module:
    """Load the weights (parameters and BatchNorm statistics) of the checkpoint in ``path``
    into ``model``, which must have the same structure; returns ``model``. Which layers were
    frozen when it was saved does not matter (the fine-tuning run restores a checkpoint
    written with a frozen backbone)."""
    arrays, _ = read(path)
    _, _, weights = nnx.split(model, nnx.RngState, ...)
    saved = {**arrays["params"], **arrays["state"]}
    nnx.update(model, with_arrays(weights, saved, what="weights", path=path))
    return model


def load_model(path: str | os.PathLike) -> nnx.Module:
    """Rebuild the model saved in ``path`` from its ``build_config`` and load its weights;
    returned in eval mode, ready for ``evaluate``/``predict``."""
    _, meta = read(path)
    if not meta.get("build_config"):
        raise ValueError(f"checkpoint {path} has no build_config (its model was not made by "
                         "jaxvision.models.build_model), so it cannot be rebuilt; create the model "
                         "yourself and call jaxvision.train.restore(path, model)")
    model = restore(path, rebuild_model(meta["build_config"]))
    model.eval()
    return model


def resume(path: str | os.PathLike, trainer: "Trainer") -> None:
    """Continue ``trainer`` from the checkpoint in ``path``: weights, optimizer state,
    epoch/step/seed, history and callback state."""
    from jaxvision.train.trainer import History  # trainer imports steps; avoid a cycle at import time

    arrays, meta = read(path)
    carry = trainer.carry
    leaves, treedef = jax.tree.flatten(carry.opt_state)
    saved = [arrays["opt_state"][str(i)] for i in range(len(arrays["opt_state"]))]
    if [(a.shape, a.dtype) for a in saved] != [(a.shape, a.dtype) for a in leaves]:
        raise ValueError(f"checkpoint {path} holds the state of a different optimizer "
                         f"({len(saved)} arrays; this optimizer has {len(leaves)}); resume with the same optimizer")
    trainer.carry = carry._replace(
        params=with_arrays(carry.params, arrays["params"], what="parameters", path=path),
        state=with_arrays(carry.state, arrays["state"], what="non-trainable state", path=path),
        opt_state=jax.tree.unflatten(treedef, saved))
    trainer.set_position(epoch=meta["epoch"], step=meta["step"], seed=meta["seed"])
    trainer.history = History(meta["history"], meta["history_epochs"])
    for callback, (name, state) in zip(trainer.callbacks, meta["callbacks"]):
        if type(callback).__name__ == name:
            callback.set_state(state)
