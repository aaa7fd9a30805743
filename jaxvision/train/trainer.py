"""The state of one ``fit`` call: what callbacks and checkpoints see as ``trainer``.

The model's arrays are copied once at the start, so the donated training carry never
aliases them; the final (or, after an error, the last good) weights are written back into
the model by [Trainer.write_back][jaxvision.train.Trainer.write_back].
"""

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision.train.checkpoint import TrainingState, flat_arrays, with_arrays
from jaxvision.train.history import History
from jaxvision.train.metrics import Metric
from jaxvision.train.progress import Progress
from jaxvision.train.sharding import Placement
from jaxvision.train.sources import ArraySource, IterableSource
from jaxvision.train.steps import Carry, Objective, get_steps, init_sums, results, split, stream_tags

Source = ArraySource | IterableSource


class Resumable(Protocol):
    """What the trainer needs of a callback: its state, saved in checkpoints."""

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...

    def get_arrays(self) -> dict[str, Any]: ...

    def set_arrays(self, arrays: dict[str, Any]) -> None: ...


def fetch(values: dict[str, jax.Array]) -> dict[str, float]:
    """One device-to-host transfer for all running results (in the dict's order)."""
    return dict(zip(values, map(float, jax.device_get(list(values.values()))), strict=True))


# One dispatch for a whole tree: a copy per array is a second of Python for a DenseNet's weights.
_copies = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))


class Trainer:
    """Training state handed to callbacks: ``model``, ``epoch`` (epochs completed), ``step``
    (optimizer steps completed), ``seed``, ``history``, ``stop_training``, ``callbacks`` and
    the device ``carry`` (params, state, optimizer state..., replicated over ``placement``'s mesh)."""

    def __init__(self, model: nnx.Module, *, loss: Callable, metrics: tuple[Metric, ...],
                 optimizer: optax.GradientTransformation, seed: int, epochs: int, progress: Progress,
                 placement: Placement, callbacks: Sequence[Resumable] = (), augment: Callable | None = None,
                 objective: Objective | None = None):
        self.model, self.optimizer, self.metrics, self.placement = model, optimizer, metrics, placement
        self.seed, self.epochs, self.progress, self.callbacks = seed, epochs, progress, list(callbacks)
        train_graphdef, eval_graphdef, params, rngs, state = split(model)
        self.rngs = placement.replicate(rngs)
        self.steps = get_steps(train_graphdef, eval_graphdef, loss, metrics, optimizer, stream_tags(model),
                               placement, augment, objective)
        params, state = self._copy(params), self._copy(state)
        self.carry = placement.replicate(Carry(params, state, self._copy(optimizer.init(params)), init_sums(metrics),
                                               jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32),
                                               jnp.zeros((), jnp.float32)))
        self.key = placement.replicate(jax.random.key(seed))
        self.epoch = self.step = 0
        self.history = History()
        self.stop_training = False
        self.example: jax.ShapeDtypeStruct | None = None  # one training example's shape and dtype

    def checkpoint_state(self) -> TrainingState:
        """Everything needed to resume bit-identically, as plain values for a checkpoint."""
        carry = self.carry
        return TrainingState(params=flat_arrays(carry.params), state=flat_arrays(carry.state),
                             opt_state=jax.tree.leaves(carry.opt_state), epoch=self.epoch, step=self.step,
                             seed=self.seed, build_config=getattr(self.model, "build_config", None),
                             history=self.history.history, history_epochs=self.history.epoch,
                             callbacks=[(type(c).__name__, c.get_state()) for c in self.callbacks],
                             callback_arrays={str(i): arrays for i, c in enumerate(self.callbacks)
                                              if (arrays := c.get_arrays())},
                             stop_training=self.stop_training,
                             input_shape=None if self.example is None else list(self.example.shape),
                             input_dtype=None if self.example is None else str(self.example.dtype))

    def resume(self, training: TrainingState, source: str | os.PathLike) -> None:
        """Continue from ``training`` (read from the checkpoint ``source``): weights, optimizer
        state, epoch/step/seed, history, whether training had stopped, and the callbacks' state."""
        carry, source = self.carry, f"checkpoint {source}"
        leaves, treedef = jax.tree.flatten(carry.opt_state)
        if [(a.shape, a.dtype) for a in training.opt_state] != [(a.shape, a.dtype) for a in leaves]:
            raise ValueError(f"{source} holds the state of a different optimizer "
                             f"({len(training.opt_state)} arrays; this optimizer has {len(leaves)}); "
                             "resume with the same optimizer")
        self.carry = self.placement.replicate(carry._replace(
            params=with_arrays(carry.params, training.params, what="parameters", source=source),
            state=with_arrays(carry.state, training.state, what="non-trainable state", source=source),
            opt_state=jax.tree.unflatten(treedef, training.opt_state),
            step=jnp.asarray(training.step, jnp.int32)))
        self.epoch, self.step, self.seed = training.epoch, training.step, training.seed
        self.key = self.placement.replicate(jax.random.key(training.seed))
        self.history = History(training.history, training.history_epochs)
        self.stop_training = training.stop_training
        if training.input_shape is not None:
            self.example = jax.ShapeDtypeStruct(tuple(training.input_shape), training.input_dtype)
        for i, (callback, (name, state)) in enumerate(zip(self.callbacks, training.callbacks)):
            if type(callback).__name__ == name:
                callback.set_state(state)
                callback.set_arrays(training.callback_arrays.get(str(i), {}))

    def _copy(self, tree):
        """A replicated copy (the carry's buffers are donated, so keepers need their own)."""
        return self.placement.replicate(_copies(tree))

    def get_weights(self) -> dict[str, dict[str, jax.Array]]:
        """Copies of the parameters and the non-trainable state, as checkpoints hold them:
        ``{"params": {"dense/kernel": array, ...}, "state": {...}}`` (safe to keep: the
        carry's buffers are donated)."""
        params, state = self._copy((self.carry.params, self.carry.state))
        return {"params": flat_arrays(params), "state": flat_arrays(state)}

    def set_weights(self, weights: dict[str, dict[str, jax.Array]]) -> None:
        """Load weights in the form [get_weights][jaxvision.train.Trainer.get_weights] returns."""
        params, state = self._copy((weights["params"], weights["state"]))
        self.carry = self.carry._replace(
            params=with_arrays(self.carry.params, params, what="parameters", source="set_weights"),
            state=with_arrays(self.carry.state, state, what="non-trainable state", source="set_weights"))

    def train_epoch(self, source: Source, epoch: int, *, shuffle: bool) -> tuple[dict[str, float], int, float]:
        """Run one epoch; returns its logs, the number of examples and the seconds taken."""
        first_step, examples, start = self.step, 0, time.perf_counter()
        self.carry = self.carry._replace(sums=self.placement.replicate(init_sums(self.metrics)))
        for size, run in source.train_calls(self.steps, seed=self.seed, epoch=epoch, shuffle=shuffle):
            self.carry = run(self.carry, self.rngs, self.key)
            self.step += 1
            examples += size
            if self.progress.due():
                logs = fetch(results(self.carry.sums, self.metrics))
                self.check_finite(epoch, first_step, source)
                self.progress.draw(epoch, self.step - first_step, logs)
        if examples == 0:
            raise ValueError(f"epoch {epoch + 1}: the training data yielded no batches")
        self.example = source.example
        logs = fetch(results(self.carry.sums, self.metrics))
        self.check_finite(epoch, first_step, source)
        return logs, examples, time.perf_counter() - start

    def check_finite(self, epoch: int, first_step: int, source: Source) -> None:
        bad_step, bad_loss = jax.device_get((self.carry.bad_step, self.carry.bad_loss))
        if bad_step < 0:
            return
        # The carry stopped updating at the bad step, so it still holds the last good weights.
        self.step = int(bad_step)
        self.carry = self.carry._replace(step=self.placement.replicate(jnp.asarray(bad_step, jnp.int32)))
        of = f"/{len(source)}" if not isinstance(source, IterableSource) or source.has_len() else ""
        raise FloatingPointError(
            f"loss became {float(bad_loss)} at epoch {epoch + 1}, step {int(bad_step) - first_step + 1}{of}; "
            "training stopped. The model keeps the weights from before that step and checkpoints "
            "written by callbacks are untouched.")

    def evaluate(self, source: Source) -> dict[str, float]:
        """Loss and metrics over ``source`` with the current weights, in eval mode."""
        sums = self.placement.replicate(init_sums(self.metrics))
        for _, run in source.eval_calls(self.steps):
            sums = run(self.carry.params, self.carry.state, self.rngs, sums)
        return fetch(results(sums, self.metrics))

    def write_back(self) -> None:
        """Put the carry's weights into the model (skipped if a failed step consumed them)."""
        leaves = jax.tree.leaves((self.carry.params, self.carry.state))
        if not any(isinstance(a, jax.Array) and a.is_deleted() for a in leaves):
            nnx.update(self.model, self.carry.params, self.carry.state)
