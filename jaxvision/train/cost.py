"""What a training step costs, without running it: the step ``fit`` runs, lowered from shapes
alone, XLA's count of its FLOPs and bytes, and roofline estimates of its time on accelerators
from their published peaks.

Every time this module gives is an **estimate**: ``max(FLOPs / peak FLOP/s, bytes / peak
bandwidth)``, the roofline bound, on counts XLA makes on this machine. FLOPs barely depend on
the compiler; bytes do: a CPU compilation fuses less than XLA does for a GPU or a TPU, so its
byte count overstates their memory traffic, and the unoptimised lowering's count (``compile=False``)
overstates it far more, so only its FLOPs are used. Measure on the device to know.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxvision.optimizers import get_optimizer
from jaxvision.train.losses import get_loss
from jaxvision.train.metrics import get_metric
from jaxvision.train.sharding import Placement
from jaxvision.train.steps import Carry, get_steps, init_sums, split, stream_tags


@dataclasses.dataclass(frozen=True)
class Chip:
    """Published peaks of one accelerator chip (dense, no sparsity)."""

    name: str
    bf16_flops: float  # FLOP/s for bfloat16 matrix work
    f32_flops: float  # FLOP/s for float32 matrix work at JAX's default precision
    bandwidth: float  # bytes/s of HBM
    source: str


CHIPS = {
    # NVIDIA H100 SXM5 datasheet: BF16 989 TFLOP/s, TF32 495 TFLOP/s (dense; JAX's default precision
    # lets XLA run float32 convolutions and matmuls as TF32 on the GPU), HBM3 3.35 TB/s.
    "H100": Chip("NVIDIA H100 SXM", 989e12, 495e12, 3.35e12, "NVIDIA H100 Tensor Core GPU datasheet"),
    # NVIDIA H200 SXM datasheet: the H100's compute, HBM3e 4.8 TB/s.
    "H200": Chip("NVIDIA H200 SXM", 989e12, 495e12, 4.8e12, "NVIDIA H200 Tensor Core GPU datasheet"),
    # Cloud TPU v5e: 197 TFLOP/s bf16, HBM2 819 GB/s; float32 matmuls at default precision run as
    # one bfloat16 pass on the MXU.
    "TPU v5e": Chip("Google TPU v5e", 197e12, 197e12, 819e9, "cloud.google.com/tpu/docs/v5e"),
    # Cloud TPU v6e (Trillium): 918 TFLOP/s bf16, HBM 1,640 GB/s.
    "TPU v6e": Chip("Google TPU v6e", 918e12, 918e12, 1640e9, "cloud.google.com/tpu/docs/v6e"),
}


@dataclasses.dataclass(frozen=True)
class StepCost:
    """XLA's counts for one step: FLOPs and bytes accessed (``None`` when not counted)."""

    flops: float
    bytes_accessed: float | None

    def seconds(self, chip: Chip, policy: str = "float32") -> float:
        """Estimated seconds on ``chip``: the roofline bound, or the compute bound alone when
        bytes were not counted. An estimate, never a measurement."""
        peak = chip.bf16_flops if policy == "mixed_bfloat16" else chip.f32_flops
        compute = self.flops / peak
        return compute if self.bytes_accessed is None else max(compute, self.bytes_accessed / chip.bandwidth)


def _abstract(tree, sharding):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a), sharding=sharding), tree)


def lower_train_step(model: nnx.Module, *, loss: str, input_shape: tuple[int, ...], label_shape: tuple[int, ...],
                     label_dtype=jnp.int32, metrics=("accuracy",), optimizer: str = "adam",
                     mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh | None = None):
    """``(steps, args)``: ``steps.train_batch`` is the jitted train step ``fit`` runs for ``model``
    (forward, loss, backward,
    optimizer update, metrics) and abstract arguments for one global batch of ``input_shape``,
    sharded as ``fit(mesh=mesh)`` shards them. ``model`` may be abstract (``nnx.eval_shape``).
    ``jax.export.export(step.train_batch, platforms=...)(*args)`` needs no accelerator; with an
    ``AbstractMesh`` that is the only way to lower it. Default mesh: one device of this machine.

    Examples:
        >>> from jaxvision.models import build_model
        >>> model = nnx.eval_shape(lambda: build_model("mnist_convnet"))
        >>> steps, args = lower_train_step(model, loss="sparse_categorical_crossentropy",
        ...                                input_shape=(64, 28, 28, 1), label_shape=(64,))
        >>> gflop = step_cost(steps, args).flops / 1e9  # per step of 64 images: about 4.6
        >>> bool(4.5 < gflop < 4.7)
        True
    """
    if mesh is None:  # one device of this machine: the whole batch's cost, and it can compile here
        mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    train_graphdef, eval_graphdef, params, rngs, state = split(model)
    metric_fns, opt = tuple(get_metric(m) for m in metrics), get_optimizer(optimizer)
    steps = get_steps(train_graphdef, eval_graphdef, get_loss(loss), metric_fns, opt, stream_tags(model),
                      Placement(mesh))
    carry = Carry(params, state, jax.eval_shape(opt.init, params), init_sums(metric_fns),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32))
    replicated, batched = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    args = (_abstract(carry, replicated), _abstract(rngs, replicated), _abstract(jax.random.key(0), replicated),
            jax.ShapeDtypeStruct(input_shape, jnp.float32, sharding=batched),
            jax.ShapeDtypeStruct(label_shape, label_dtype, sharding=batched))
    return steps, args


def step_cost(steps, args, *, compile: bool = False) -> StepCost:
    """XLA's cost analysis of ``steps.train_batch`` on ``args`` (from
    [lower_train_step][jaxvision.train.cost.lower_train_step]).
    ``compile=False`` counts the lowered module (fast; FLOPs only, see the module docstring);
    ``compile=True`` compiles it for this machine's backend and adds its bytes accessed."""
    lowered = steps.train_batch.lower(*args)
    if not compile:
        return StepCost(float(lowered.cost_analysis()["flops"]), None)
    analysis = lowered.compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return StepCost(float(analysis["flops"]), float(analysis["bytes accessed"]))


def profile_seconds(cost: StepCost, chip: Chip, *, epochs: int, train_examples: int, batch_size: int,
                    validation_examples: int = 0, policy: str = "float32") -> float:
    """Estimated seconds for ``epochs`` of training steps, plus validation counted as a third of
    a training step per batch (a forward pass of the three a training step makes)."""
    train_steps = math.ceil(train_examples / batch_size)
    val_steps = math.ceil(validation_examples / batch_size)
    return epochs * (train_steps + val_steps / 3) * cost.seconds(chip, policy)
