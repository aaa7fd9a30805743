"""Training checkpoints with orbax-checkpoint, and loading models back from them.

A checkpoint path is a directory managed by ``orbax.checkpoint.CheckpointManager`` keeping
one finished checkpoint, ``<path>/<n>/``, with two items:

* ``arrays``: parameters, non-trainable state (BatchNorm statistics) — both keyed by their
  module path, e.g. ``"conv2d/kernel"`` — and the optimizer state's leaves;
* ``meta`` (JSON): epochs and steps completed, seed, the model's ``build_config``, the
  history and the callbacks' state, i.e. everything needed to resume bit-identically, and the
  shape and dtype of one training example (``"input"``, what ``python -m jaxvision.export``
  exports for).

Checkpoints are written and read collectively (every process calls ``save``/``load``;
orbax writes each array once) and do not depend on the topology: arrays are restored onto
the target mesh's shardings (replicated), so a checkpoint written on one device loads
bit-identically onto eight, and back.

What is saved and loaded is a ``TrainingState`` of plain values: the trainer hands one
to ``save`` and takes one back from ``load``; this module knows nothing of the trainer.

Writes are atomic: orbax writes ``<n+1>.orbax-checkpoint-tmp-*`` and renames it when
complete, and only then deletes ``<n>``; readers only see finished checkpoints, so a crash
mid-write leaves the previous checkpoint loadable.

Integrity: ``meta`` holds the sha256 of every array (names, dtypes, shapes and bytes, in a
fixed order) and the sha256 of the rest of ``meta`` (build config, epochs, history, ...),
computed at save time; loading requires both and recomputes them, so a flipped byte, an
edited meta or a deleted hash is a named error rather than silently different weights.

Untrusted folders: before orbax sees the folder it is walked, and every entry must be a
directory or a regular file, not a symbolic link (a FIFO would hang orbax, a link would read
another file); the arrays' declared sizes are charged to a
``jaxvision.untrusted.Budget`` of the folder's bytes before they are restored; ``meta``
is checked field by field, each problem a ``ValueError`` naming the checkpoint.
[load_model][jaxvision.train.load_model] builds the model abstractly first (``nnx.eval_shape``) and compares every
shape with the checkpoint's before allocating anything, so a ``build_config`` that asks for a
huge model is refused cheaply.
"""

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from jaxvision.models.registry import rebuild_model
from jaxvision.train.sharding import Placement, placement
from jaxvision.untrusted import Budget, checked_tree, read_json

FORMAT = "jaxvision.train/1"
MAX_IMAGE_SIZE = 2048  # a recorded image side beyond this is no run of this project (the book: 180, 299)
# meta's fields and the types load accepts (the hashes are checked separately)
MAX_INPUT_SIDE = 1 << 16  # a recorded example's sizes (pixels, channels): bounded before anything is allocated
_META_TYPES = {"epoch": int, "step": int, "seed": int, "build_config": (str, type(None)), "history": dict,
               "history_epochs": list, "callbacks": list, "stop_training": bool}


@dataclasses.dataclass
class TrainingState:
    """The contents of one checkpoint.

    ``params`` and ``state`` (non-trainable, e.g. BatchNorm statistics) map module paths
    (``"conv2d/kernel"``) to arrays; ``opt_state`` holds the optimizer state's leaves in tree
    order; ``callbacks`` pairs each callback's class name with its JSON state and
    ``callback_arrays`` holds their arrays (e.g. ``EarlyStopping``'s best weights) by callback
    position; ``stop_training`` records that a callback ended the run; ``input_shape`` and
    ``input_dtype`` are one training example's (``None`` when unknown: a model saved outside ``fit``).
    """

    params: dict[str, jax.Array]
    state: dict[str, jax.Array]
    opt_state: list[jax.Array]
    epoch: int
    step: int
    seed: int
    build_config: str | None = None
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    history_epochs: list[int] = dataclasses.field(default_factory=list)
    callbacks: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    callback_arrays: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    stop_training: bool = False
    input_shape: list[int] | None = None
    input_dtype: str | None = None


def _manager(path: str | os.PathLike, *, create: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False, create=create,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(Path(path).absolute(), options=options,
                                 item_handlers={"arrays": ocp.StandardCheckpointHandler(),
                                                "meta": ocp.JsonCheckpointHandler()})


def flat_arrays(state: nnx.State) -> dict[str, jax.Array]:
    """``{"conv2d/kernel": array, ...}`` for a state of the model."""
    return {"/".join(map(str, path)): var.get_value() for path, var in nnx.to_flat_state(state)}


def with_arrays(state: nnx.State, arrays: dict[str, jax.Array], *, what: str, source: str) -> nnx.State:
    """``state`` with its values taken from ``arrays``; a clear error naming ``source`` (e.g.
    ``"checkpoint runs/x/backup"``) if names or shapes differ."""
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
        raise ValueError(f"{source} does not match the model's {what}: " + "; ".join(problems))
    return nnx.from_flat_state([(p, var.replace(arrays["/".join(map(str, p))])) for p, var in nnx.to_flat_state(state)])


def arrays_sha256(arrays: dict) -> str:
    """sha256 over every array of a (nested) dict: its path, dtype, shape and bytes, sorted
    by path. Each process hashes its own copy of replicated arrays."""
    digest = hashlib.sha256()
    for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(arrays)[0], key=lambda kv: jax.tree_util.keystr(kv[0])):
        value = np.asarray(leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def meta_sha256(meta: dict) -> str:
    """sha256 of ``meta``'s canonical JSON, without its two hashes."""
    rest = {k: v for k, v in meta.items() if k not in ("sha256", "meta_sha256")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def has_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a finished checkpoint."""
    if not Path(path).is_dir():
        return False
    checked_tree(path, "checkpoint")
    with _manager(path, create=False) as manager:
        return manager.latest_step() is not None


def save(path: str | os.PathLike, training: TrainingState) -> None:
    """Write ``training`` as the newest checkpoint in ``path``."""
    arrays = {"params": training.params, "state": training.state,
              "opt_state": {str(i): leaf for i, leaf in enumerate(training.opt_state)}}
    if training.callback_arrays:
        arrays["callbacks"] = training.callback_arrays
    meta = {"format": FORMAT, "epoch": training.epoch, "step": training.step, "seed": training.seed,
            "build_config": training.build_config, "history": training.history,
            "history_epochs": training.history_epochs, "callbacks": [list(c) for c in training.callbacks],
            "stop_training": training.stop_training, "sha256": arrays_sha256(arrays),
            "input": None if training.input_shape is None else {"shape": list(training.input_shape),
                                                                "dtype": training.input_dtype}}
    meta["meta_sha256"] = meta_sha256(json.loads(json.dumps(meta)))  # as it reads back
    with _manager(path, create=True) as manager:
        manager.save((manager.latest_step() or 0) + 1,
                     args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)))


def load(path: str | os.PathLike, where: Placement | None = None) -> TrainingState:
    """The newest finished checkpoint in ``path``, arrays replicated over ``where``'s mesh
    (default: every device)."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    folder_bytes = checked_tree(path, "checkpoint")
    with _manager(path, create=False) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"{path} holds no finished checkpoint")
        target = (where or placement(None)).replicated
        budget = Budget(f"checkpoint {path}", folder_bytes)
        try:
            leaves = jax.tree_util.tree_flatten_with_path(manager.item_metadata(step)["arrays"].tree)
            sizes = [math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for _, leaf in leaves[0]]
        except Exception as e:  # orbax/tensorstore errors of every kind for a damaged directory
            raise _unreadable(path, step, e) from e
        for (key, _), nbytes in zip(leaves[0], sizes):  # before anything is allocated
            budget.take(nbytes, f"array {jax.tree_util.keystr(key)}")
        try:
            abstract = jax.tree.unflatten(leaves[1], [jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=target)
                                                      for _, m in leaves[0]])
            restored = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract),
                                                                       meta=ocp.args.JsonRestore()))
        except Exception as e:
            raise _unreadable(path, step, e) from e
    arrays, meta = restored["arrays"], restored["meta"]
    if not isinstance(meta, dict) or not isinstance(arrays, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a jaxvision.train checkpoint (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    _check_meta(meta, arrays, path)
    return TrainingState(params=arrays["params"], state=arrays["state"],
                         opt_state=[arrays["opt_state"][str(i)] for i in range(len(arrays["opt_state"]))],
                         epoch=meta["epoch"], step=meta["step"], seed=meta["seed"],
                         build_config=meta["build_config"], history=meta["history"],
                         history_epochs=meta["history_epochs"], callbacks=[tuple(c) for c in meta["callbacks"]],
                         callback_arrays=arrays.get("callbacks", {}), stop_training=meta["stop_training"],
                         **_recorded_example(meta))


def _unreadable(path: str | os.PathLike, step: int, error: Exception) -> ValueError:
    return ValueError(f"checkpoint {path} (step {step}) cannot be read: {type(error).__name__}: {str(error)[:300]}")


def _check_meta(meta: dict, arrays: dict, path: str | os.PathLike) -> None:
    """Both hashes present and matching, then every field of the expected type: a file cannot
    switch the integrity check off by deleting its hash."""
    for key in ("sha256", "meta_sha256"):
        if not isinstance(meta.get(key), str):
            raise ValueError(f"checkpoint {path}: meta has no {key} (written before the checksum, or the "
                             "hash was removed); refusing to load it unchecked")
    if meta_sha256(meta) != meta["meta_sha256"]:
        raise ValueError(f"checkpoint {path}: its meta (build config, epochs, history) does not match the "
                         "sha256 written when it was saved (a damaged or altered file); refusing to load it")
    if arrays_sha256(arrays) != meta["sha256"]:
        raise ValueError(f"checkpoint {path}: its arrays do not match the sha256 written when it was saved "
                         "(a damaged or altered file); refusing to load it")
    for key, kind in _META_TYPES.items():
        if not isinstance(meta.get(key), kind) or (kind is int and isinstance(meta[key], bool)):
            raise ValueError(f"checkpoint {path}: meta field {key!r} is {meta.get(key)!r:.80}, not the type a "
                             "checkpoint records")
    parts = {"params", "state", "opt_state"}
    if not (parts <= arrays.keys() and all(isinstance(arrays[k], dict) for k in parts)
            and set(arrays["opt_state"]) == {str(i) for i in range(len(arrays["opt_state"]))}
            and all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in meta["callbacks"])):
        raise ValueError(f"checkpoint {path}: arrays or callbacks are not laid out as a checkpoint records them")


def save_checkpoint(path: str | os.PathLike, model: nnx.Module, *, epoch: int = 0, step: int = 0) -> None:
    """Write ``model``'s weights (parameters and non-trainable state) as a checkpoint in
    ``path``, for a model trained outside [fit][jaxvision.train.fit] (e.g. your own NNX loop).

    The checkpoint has no optimizer state, so ``fit(resume_from=path)`` cannot continue from it;
    [load_model][jaxvision.train.load_model] (when the model records a ``build_config``: built by ``build_model`` or a
    ``@register``-ed class) and [restore][jaxvision.train.restore] read it. Written atomically, like every checkpoint.
    """
    params, state = nnx.split(model, nnx.Param, nnx.RngState, ...)[1::2]
    save(path, TrainingState(params=flat_arrays(params), state=flat_arrays(state), opt_state=[], epoch=epoch,
                             step=step, seed=0, build_config=getattr(model, "build_config", None)))


def restore(path: str | os.PathLike, model: nnx.Module, *, mesh: jax.sharding.Mesh | None = None) -> nnx.Module:
    """Load the weights (parameters and BatchNorm statistics) of the checkpoint in ``path``
    into ``model``, which must have the same structure; returns ``model`` in eval mode, as
    [load_model][jaxvision.train.load_model] does (a plain ``model(x)`` is inference, as in Keras). The arrays are
    replicated over ``mesh`` (default: every device), whatever topology wrote them. Which
    layers were frozen when it was saved does not matter (the fine-tuning run restores a
    checkpoint written with a frozen backbone)."""
    model = _load_weights(model, load(path, placement(mesh)), path)
    model.eval()
    return model


def load_model(path: str | os.PathLike, *, mesh: jax.sharding.Mesh | None = None,
               trusted_modules: Iterable[str] = ()) -> nnx.Module:
    """Rebuild the model saved in ``path`` from its ``build_config`` and load its weights
    (replicated over ``mesh``); returned in eval mode, ready for ``evaluate``/``predict``.

    A model registered outside jaxvision is rebuilt if its module is already imported, or if
    you name it in ``trusted_modules`` (``load_model(path, trusted_modules=("mymodels",))``):
    the checkpoint records the module, but a file alone never decides what gets imported.
    Only the exact names listed are admitted: ``("mymodels",)`` imports the module
    ``mymodels`` and nothing else (not ``mymodels.train``, not ``mymodels.__main__``; list a
    submodule to trust it), and a bare string instead of a tuple or list is a ``TypeError``.
    """
    training = load(path, placement(mesh))
    if not training.build_config:
        raise ValueError(f"checkpoint {path} has no build_config (its model was not made by "
                         "jaxvision.models.build_model or a @register-ed class), so it cannot be rebuilt; "
                         "create the model yourself and call jaxvision.train.restore(path, model)")
    source = f"checkpoint {path}"
    build = lambda: rebuild_model(training.build_config, trusted_modules=trusted_modules, source=source)  # noqa: E731
    try:
        model = _build_abstractly(build)
    except (ValueError, TypeError):
        raise
    except Exception as e:  # a builder given recorded kwargs it cannot use (a zero width, a wrong type)
        raise ValueError(f"{source}: its build_config does not build a model: {type(e).__name__}: "
                         f"{str(e)[:300]}") from e
    graphdef, rng_state, abstract = nnx.split(model, nnx.RngState, ...)
    weights = with_arrays(abstract, {**training.params, **training.state}, what="weights", source=source)
    model = nnx.merge(graphdef, rng_state, weights)
    model.eval()
    return model


def _build_abstractly(build) -> nnx.Module:
    """``build()`` with abstract weights (shapes and dtypes, nothing computed or compiled)
    and concrete RNG streams (keys and counts, as ``build()`` makes them): what a checkpoint's
    weights are loaded into. The streams are computed by one small jitted function from which
    XLA drops every initialiser, since none of their results is returned."""
    model = nnx.eval_shape(build)
    if not jax.tree.leaves(nnx.state(model, nnx.RngState)):
        return model
    rng_state = jax.jit(lambda: nnx.state(build(), nnx.RngState))()
    nnx.update(model, rng_state)
    return model


def _recorded_example(meta: dict) -> dict[str, Any]:
    """TrainingState's ``input_shape``/``input_dtype`` from ``meta`` (``None`` in checkpoints
    written before they were recorded)."""
    example = meta.get("input")
    if example is None:
        return {"input_shape": None, "input_dtype": None}
    shape, dtype = (example.get("shape"), example.get("dtype")) if isinstance(example, dict) else (None, None)
    if not (isinstance(shape, list) and 1 <= len(shape) <= 8 and isinstance(dtype, str) and len(dtype) <= 32
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_INPUT_SIDE for d in shape)):
        raise ValueError(f"checkpoint meta field 'input' is {example!r:.80}, not one example's shape (1 to 8 "
                         f"sizes in 1..{MAX_INPUT_SIDE}) and dtype name as fit records them")
    return {"input_shape": tuple(shape), "input_dtype": dtype}


def recorded_input(checkpoint: str | os.PathLike) -> tuple[tuple[int, ...], str] | None:
    """``(shape, dtype)`` of one example of the data ``fit`` trained the model in ``checkpoint``
    on, as it recorded them; ``None`` for a checkpoint not written by ``fit`` (or by a version
    before it recorded them)."""
    if not has_checkpoint(checkpoint):
        return None
    with _manager(checkpoint, create=False) as manager:
        meta = manager.restore(manager.latest_step(), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    example = _recorded_example(meta if isinstance(meta, dict) else {})
    if example["input_shape"] is None:
        return None
    return tuple(int(d) for d in example["input_shape"]), str(example["input_dtype"])


def recorded_image_size(checkpoint: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` from ``image_size`` in ``config.json``/``metrics.json`` of the
    checkpoint folder or the run folder above it (where the experiment scripts write
    ``metrics.json``); ``None`` when neither records one."""
    checkpoint = Path(checkpoint)
    for folder in (checkpoint, checkpoint.parent):
        for name in ("config.json", "metrics.json"):
            path = folder / name
            if path.is_file():
                size = _read_record(path).get("image_size")
                if size is not None:
                    return _image_size(size, path)
    return None


def _read_record(path: Path) -> dict:
    """A run's small JSON record (``config.json``/``metrics.json``): a regular file of at most
    1 MiB holding an object."""
    record = read_json(path, "run record", max_bytes=1 << 20)
    if not isinstance(record, dict):
        raise ValueError(f"run record {path}: not a JSON object")
    return record


def _image_size(size: Any, path: Path) -> tuple[int, int]:
    sides = [size, size] if isinstance(size, int) else size
    if not (isinstance(sides, list) and len(sides) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_IMAGE_SIZE for s in sides)):
        raise ValueError(f"{path}: image_size must be a side or [height, width] from 1 to {MAX_IMAGE_SIZE}, "
                         f"got {size!r:.80}")
    return sides[0], sides[1]


def _load_weights(model: nnx.Module, training: TrainingState, path: str | os.PathLike) -> nnx.Module:
    # Parameters and state together: frozen parameters travel with the state, and which
    # layers are frozen may differ between the run that saved and the model that loads.
    _, _, weights = nnx.split(model, nnx.RngState, ...)
    nnx.update(model, with_arrays(weights, {**training.params, **training.state}, what="weights",
                                  source=f"checkpoint {path}"))
    return model
