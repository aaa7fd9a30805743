"""Port check for any model, yours included: will ``fit`` and ``predict`` run on a TPU or a GPU?

No accelerator is needed. For each dtype policy (float32 and ``mixed_bfloat16``), the train
step ``fit`` runs (forward, loss, backward, Keras's Adam, metrics) and ``predict`` are exported
with ``jax.export`` for ``("tpu", "cuda")``, data-parallel over an abstract 8-device mesh, from
an abstract model (``nnx.eval_shape``: nothing is allocated or compiled for it). A model that
does not lower raises a [PortError][jaxvision.port.PortError] naming the model, the policy and
XLA's reason (a host callback, a CPU-only operation, a data-dependent shape...). Then XLA's
FLOPs and bytes for one float32 train step, compiled for this machine, give roofline estimates
of the step on an H100, H200, TPU v5e and v6e ([jaxvision.train.cost][jaxvision.train.cost]:
estimates from published peaks, not measurements).

From Python:

```python
from jaxvision.port import check
print(check(SepNet(rngs=nnx.Rngs(0)), input_shape=(32, 32, 3), loss="binary_crossentropy"))
```

From the shell, with ``MODULE:FACTORY`` (a function or class returning the model; a ``rngs``
argument gets ``nnx.Rngs(0)``) or the name of a registered model:

```
python -m jaxvision.port mymodels:SepNet --input-shape 32,32,3 --loss binary_crossentropy
python -m jaxvision.port SepNet --trusted-module mymodels --input-shape 32,32,3
```

``make port-check`` runs the same check on every registered model (``bench/port_check.py``).
What a pass proves: the code has no CPU-only operation and shards as ``fit`` shards it; not
its numbers or its speed on the device.
"""

import argparse
import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import AbstractMesh, AxisType

from jaxvision.layers import policy_scope, set_policy
from jaxvision.train.cost import CHIPS, StepCost, lower_train_step, step_cost

__all__ = ["MESH", "PLATFORMS", "POLICIES", "PortCheck", "PortError", "check", "export_steps"]

MESH = AbstractMesh((8,), ("data",), axis_types=(AxisType.Auto,))
PLATFORMS = ("tpu", "cuda")
POLICIES = ("float32", "mixed_bfloat16")

ModelOrFactory = nnx.Module | Callable[[], nnx.Module]


class PortError(RuntimeError):
    """A model whose train or predict step does not lower for the platforms asked for."""


@dataclasses.dataclass(frozen=True)
class PortCheck:
    """What [check][jaxvision.port.check] found: the exported steps by policy, as
    ``(train, predict)`` ``jax.export.Exported`` pairs, and the float32 step's cost (``None``
    when not estimated)."""

    name: str
    input_shape: tuple[int, ...]
    batch_size: int
    exported: dict[str, tuple[jax.export.Exported, jax.export.Exported]]
    cost: StepCost | None

    def __str__(self) -> str:
        policies = " and ".join(p.removeprefix("mixed_") for p in self.exported)
        lines = [f"{self.name}: lowers for {' and '.join(PLATFORMS)}, {policies}, {MESH.size}-device mesh"]
        if self.cost is not None:
            lines.append(f"  one float32 train step of {self.batch_size} × {self.input_shape}: "
                         f"{self.cost.flops / 1e9:.3g} GFLOP, {self.cost.bytes_accessed / 1e9:.3g} GB; estimated "
                         + ", ".join(f"{key} {1e3 * self.cost.seconds(chip):.3g} ms" for key, chip in CHIPS.items())
                         + " (roofline estimates from published peaks, not measurements)")
        return "\n".join(lines)


def _name(model: ModelOrFactory) -> str:
    return getattr(model, "__name__", None) or type(model).__name__


def abstract_model(model: ModelOrFactory, policy: str) -> nnx.Module:
    """``model`` (a module, or a function building one under ``policy``) under ``policy``,
    abstract: shapes and dtypes only."""
    if isinstance(model, nnx.Module):
        return nnx.eval_shape(lambda m: set_policy(m, policy), model)
    with policy_scope(policy):
        return nnx.eval_shape(model)


def output_shape(model: nnx.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``model``'s outputs for a float32 batch of ``input_shape``, computed abstractly."""
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x).shape


def labels_for(model: nnx.Module, loss: str, input_shape: tuple[int, ...]) -> tuple[tuple[int, ...], jnp.dtype]:
    """The label shape and dtype ``loss`` takes for ``model``'s outputs on ``input_shape`` (a
    batch): the outputs' shape without the class axis, as integers, for
    ``sparse_categorical_crossentropy``; the outputs' shape, as floats, otherwise."""
    out = output_shape(model, input_shape)
    return (out[:-1], jnp.int32) if loss == "sparse_categorical_crossentropy" else (out, jnp.float32)


def export_steps(model: ModelOrFactory, *, input_shape: Sequence[int], loss: str, policy: str = "float32",
                 batch_size: int = 8, label_shape: Sequence[int] | None = None, label_dtype=None,
                 mesh: AbstractMesh = MESH, platforms: Sequence[str] = PLATFORMS, name: str | None = None
                 ) -> tuple[jax.export.Exported, jax.export.Exported]:
    """``(train, predict)``: ``jax.export.Exported`` of ``fit``'s train step and of ``predict``
    for ``model`` under ``policy``, over ``mesh``, for one global batch of ``batch_size``
    examples of ``input_shape`` (labels shaped for ``loss`` from the model's outputs unless
    ``label_shape``, one example's, is given). Raises [PortError][jaxvision.port.PortError]
    naming the model and the policy when a step does not lower."""
    name = name or _name(model)
    shape = (batch_size, *map(int, input_shape))
    abstract = abstract_model(model, policy)
    if label_shape is None:
        labels, default_dtype = labels_for(abstract, loss, shape)
    else:
        labels, default_dtype = (batch_size, *map(int, label_shape)), jnp.int32
    steps, args = lower_train_step(abstract, loss=loss, input_shape=shape, label_shape=labels,
                                   label_dtype=label_dtype or default_dtype, mesh=mesh)
    carry, rngs, _, x, _ = args
    try:
        train = jax.export.export(steps.train_batch, platforms=tuple(platforms))(*args)
        predict = jax.export.export(steps.predict_batch, platforms=tuple(platforms))(carry.params, carry.state, rngs, x)
    except Exception as error:  # name the model and the step, whatever lowering raised
        raise PortError(f"{name} ({policy}): the train/predict step does not lower for {tuple(platforms)}: "
                        f"{type(error).__name__}: {error}") from error
    return train, predict


def check(model: ModelOrFactory, *, input_shape: Sequence[int], loss: str, batch_size: int = 8,
          label_shape: Sequence[int] | None = None, label_dtype=None, policies: Sequence[str] = POLICIES,
          estimate: bool = True, name: str | None = None) -> PortCheck:
    """Export ``fit``'s train step and ``predict`` for ``model`` for ("tpu", "cuda") under each
    policy over an abstract 8-device mesh, and estimate the float32 step's cost on accelerators
    (see the module docstring).

    Args:
      model: the model, or a function that builds it (then built under each policy, as
        ``policy_scope`` builds; a built model is given each policy by ``set_policy``).
      input_shape: one example's shape, e.g. ``(180, 180, 3)``.
      loss: a loss name ``fit`` takes (``"binary_crossentropy"``, ...).
      batch_size: the global batch, a multiple of 8 (one mesh of 8 devices).
      label_shape: one example's label shape; default from the model's output and ``loss``.
      label_dtype: default int32 for ``sparse_categorical_crossentropy``, else float32.
      policies: dtype policies to check.
      estimate: also compile one float32 train step for this machine and estimate its cost.
      name: the model's name in messages; default its class or function name.

    Returns:
      A [PortCheck][jaxvision.port.PortCheck]; ``print`` it for a report.

    Raises:
      PortError: a step does not lower, naming the model and the policy.

    Examples:
        >>> from jaxvision.layers import Dense
        >>> model = Dense(4, 2, activation="softmax", rngs=nnx.Rngs(0))
        >>> found = check(model, input_shape=(4,), loss="sparse_categorical_crossentropy", estimate=False)
        >>> print(found)
        Dense: lowers for tpu and cuda, float32 and bfloat16, 8-device mesh
        >>> train, predict = found.exported["mixed_bfloat16"]
        >>> train.nr_devices, predict.out_avals[0].shape
        (8, (8, 2))
    """
    if batch_size <= 0 or batch_size % MESH.size:
        raise ValueError(f"check: batch_size must be a positive multiple of {MESH.size} (the mesh's devices), "
                         f"got {batch_size}")
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or min(input_shape) <= 0:
        raise ValueError(f"check: input_shape must be one example's positive sizes, got {input_shape}")
    name = name or _name(model)
    exported = {policy: export_steps(model, input_shape=input_shape, loss=loss, policy=policy, batch_size=batch_size,
                                     label_shape=label_shape, label_dtype=label_dtype, name=name)
                for policy in policies}
    cost = None
    if estimate:
        abstract = abstract_model(model, "float32")
        shape = (batch_size, *input_shape)
        labels, default_dtype = ((batch_size, *label_shape), jnp.int32) if label_shape is not None else \
            labels_for(abstract, loss, shape)
        cost = step_cost(*lower_train_step(abstract, loss=loss, input_shape=shape, label_shape=labels,
                                           label_dtype=label_dtype or default_dtype), compile=True)
    return PortCheck(name, input_shape, batch_size, exported, cost)


def resolve(spec: str, trusted_modules: Sequence[str] = ()) -> tuple[str, Callable[[], nnx.Module]]:
    """``(name, factory)`` for ``"MODULE:FACTORY"`` (``FACTORY`` called with ``rngs=nnx.Rngs(0)``
    when it takes ``rngs``) or a registered model's name, after importing ``trusted_modules``.
    A ``ValueError`` says in one line what is wrong."""
    from jaxvision.models import build_model
    from jaxvision.models.registry import registered

    for module in trusted_modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"--trusted-module {module}: cannot import it: {error}") from None
    if ":" not in spec:
        if spec not in registered():
            raise ValueError(f"{spec!r} is neither MODULE:FACTORY nor a registered model (registered: "
                             f"{', '.join(registered())}); a model registered in your module needs "
                             "--trusted-module MODULE")
        return spec, lambda: build_model(spec)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected MODULE:FACTORY, e.g. mymodels:SepNet")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{spec!r}: cannot import module {module_name!r}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{spec!r}: module {module_name!r} ({module.__file__}) has no function or class "
                         f"{attribute!r}")
    try:
        # a Module class's own signature is its metaclass's (*args, **kwargs): read __init__'s
        takes_rngs = "rngs" in inspect.signature(factory.__init__ if isinstance(factory, type) else factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        takes_rngs = False

    def build() -> nnx.Module:
        model = factory(rngs=nnx.Rngs(0)) if takes_rngs else factory()
        if not isinstance(model, nnx.Module):
            raise ValueError(f"{spec!r} returned a {type(model).__name__}, not an nnx.Module")
        return model

    build.__name__ = attribute
    return attribute, build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxvision.port", description=__doc__.splitlines()[0])
    p.add_argument("model", help="MODULE:FACTORY (e.g. mymodels:SepNet) or a registered model's name")
    p.add_argument("--input-shape", required=True, help="one example's shape, H,W,C")
    p.add_argument("--loss", default=None, help="a loss fit takes (default: binary_crossentropy for one output, "
                                                "else sparse_categorical_crossentropy)")
    p.add_argument("--batch-size", type=int, default=8, help="the global batch, a multiple of 8")
    p.add_argument("--trusted-module", action="append", default=[], help="import this module first")
    p.add_argument("--no-estimate", action="store_true", help="skip compiling the step for the cost estimates")
    args = p.parse_args(argv)
    try:
        shape = tuple(int(d) for d in args.input_shape.split(","))
        name, build = resolve(args.model, args.trusted_module)
        loss = args.loss
        if loss is None:
            outputs = output_shape(abstract_model(build, "float32"), (1, *shape))[-1]
            loss = "binary_crossentropy" if outputs == 1 else "sparse_categorical_crossentropy"
        found = check(build, input_shape=shape, loss=loss, batch_size=args.batch_size, estimate=not args.no_estimate,
                      name=name)
    except PortError as error:
        print(f"FAILS: {' '.join(str(error).split())[:1000]}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(f"{found} [loss {loss}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
