"""Where the training arrays live: data parallelism over a device mesh.

``fit``, ``evaluate`` and ``predict`` run on a ``jax.sharding.Mesh`` whose ``"data"``
axis splits every batch on its leading axis, while parameters, optimizer state and
BatchNorm statistics are replicated. The steps are ordinary ``jax.jit`` functions of
global arrays, so XLA inserts the collectives: gradients are all-reduced and BatchNorm
normalises with the statistics of the global batch, exactly as on one device. The default
mesh spans every device (``jax.devices()``: all local devices, and those of the other
processes after ``jax.distributed.initialize()``); one device behaves as before.

Several processes (hosts): every process runs the same script; each uploads only the
rows of a batch that its own devices hold (array data), or contributes its own local
batch (iterable data, e.g. a grain loader sharded per process), and
``jax.make_array_from_process_local_data`` assembles the global batch.

Adding a model axis later: build a 2-D mesh, e.g.
``jax.make_mesh((data, model), ("data", "model"), axis_types=(AxisType.Auto,) * 2)``, keep
batches on ``P("data")`` and give each parameter a ``PartitionSpec`` over ``"model"``
instead of the ``P()`` of ``Placement.replicated`` (for instance from a per-variable
sharding annotation); the jitted steps need no change, XLA partitions them.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def default_mesh() -> Mesh:
    """A 1-D mesh over every device, with the axis ``"data"``."""
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def divisible_sizes(batch_size: int, devices: int) -> str:
    """The nearest batch sizes that split evenly, for error messages.

    Examples:
        >>> divisible_sizes(30, 8)
        '24 or 32'
    """
    below, above = batch_size // devices * devices, -(-batch_size // devices) * devices
    return str(above) if below == 0 else f"{below} or {above}"


@dataclass(frozen=True)
class Placement:
    """The shardings of one mesh: replicated state, batches split over ``"data"``."""

    mesh: Mesh

    def __post_init__(self):
        if DATA_AXIS not in self.mesh.axis_names:
            raise ValueError(f"the mesh needs an axis named {DATA_AXIS!r} to split batches over, "
                             f"got axes {self.mesh.axis_names}")

    @property
    def devices(self) -> int:
        """How many ways a batch is split."""
        return self.mesh.shape[DATA_AXIS]

    def describe(self) -> str:
        """``"8 × cpu devices (cpu) over 1 process, mesh {'data': 8}"``: what ``fit`` prints
        once at ``verbose >= 1``."""
        devices = list(self.mesh.devices.flat)
        count, processes = len(devices), len({d.process_index for d in devices})
        return (f"{count} × {devices[0].platform} device{'s' if count > 1 else ''} ({devices[0].device_kind}) over "
                f"{processes} process{'es' if processes > 1 else ''}, mesh {dict(self.mesh.shape)}")

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batched(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    def layout(self, size: int) -> NamedSharding:
        """Batches split over the devices; one whose size does not divide (only ever a
        partial last batch) is replicated instead: each device computes all of it."""
        return self.batched if size % self.devices == 0 else self.replicated

    def check_batch_size(self, batch_size: int, *, what: str) -> None:
        if batch_size % self.devices:
            raise ValueError(f"{what}: batch size {batch_size} does not split evenly over the {self.devices} devices "
                             f"of the mesh's {DATA_AXIS!r} axis; use a multiple of {self.devices}, e.g. "
                             f"{divisible_sizes(batch_size, self.devices)}")

    def padded(self, size: int) -> int:
        """``size`` rounded up to a multiple of the device count."""
        return -(-size // self.devices) * self.devices

    def replicate(self, tree):
        """Copy every array of ``tree`` (host or device) to every device of the mesh."""
        if jax.process_count() == 1:
            return jax.device_put(tree, self.replicated)
        return jax.tree.map(self._replicate_leaf, tree)

    def _replicate_leaf(self, leaf):
        if isinstance(leaf, jax.Array) and leaf.sharding == self.replicated:
            return leaf
        # device_put cannot target other processes' devices; every process holds the same
        # value, so each builds its own shards of the global array from host memory.
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            return _wrap_key_data(self.replicated)(self._replicate_leaf(jax.random.key_data(leaf)))
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, self.replicated, lambda index: host[index])

    def rows(self, data: np.ndarray, index: np.ndarray, sharding: NamedSharding) -> jax.Array:
        """The global array ``data[index]`` with ``sharding``; each process reads only the
        rows its devices hold (``index`` is the same on every process)."""
        shape = (len(index), *data.shape[1:])
        return jax.make_array_from_callback(shape, sharding, lambda at: np.asarray(data[index[at[0]]])[(slice(None), *at[1:])])

    def local_batch(self, batch: np.ndarray, *, what: str) -> jax.Array:
        """This process's part of a batch → the global batch, split over ``"data"``."""
        batch = np.asarray(batch)
        local_devices = self.devices // jax.process_count()
        if len(batch) % local_devices == 0:
            return jax.make_array_from_process_local_data(self.batched, batch)
        if jax.process_count() > 1:
            raise ValueError(f"{what}: a batch of {len(batch)} examples does not split over this process's "
                             f"{local_devices} devices; with several processes every batch must (drop the "
                             "remainder, or pad evaluation batches)")
        return jax.device_put(batch, self.replicated)

    def to_host(self, array: jax.Array) -> np.ndarray:
        """The whole of a (possibly multi-process) array as a NumPy array, on every process."""
        if array.is_fully_addressable or array.is_fully_replicated:
            return np.asarray(array)
        return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def local_rows(array: jax.Array) -> np.ndarray:
    """This process's rows of an array split over ``"data"`` (all of it with one process)."""
    if jax.process_count() == 1:
        return np.asarray(array)
    shards = sorted(array.addressable_shards, key=lambda shard: shard.index[0].start or 0)
    return np.concatenate([np.asarray(shard.data) for shard in shards])


@functools.cache
def _wrap_key_data(sharding: NamedSharding) -> Callable:
    return jax.jit(jax.random.wrap_key_data, out_shardings=sharding)


def placement(mesh: Mesh | None) -> Placement:
    """The placement for ``mesh`` (``None``: [default_mesh][jaxvision.train.default_mesh]). The steps leave the
    partitioning to XLA, so axes typed ``Explicit`` (``jax.make_mesh``'s default) are used as
    ``Auto``."""
    mesh = default_mesh() if mesh is None else mesh
    if any(kind != AxisType.Auto for kind in mesh.axis_types):
        mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return Placement(mesh)


def is_main_process() -> bool:
    """Whether this process prints, plots and writes files (process 0)."""
    return jax.process_index() == 0


def pad_index(start: int, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start .. start+size`` of ``n``, the ones past the end repeating the last row,
    and the mask of real rows (evaluation pads a partial batch instead of dropping it).

    Examples:
        >>> [a.tolist() for a in pad_index(8, 4, 10)]
        [[8, 9, 9, 9], [True, True, False, False]]
    """
    positions = np.arange(start, start + size)
    return np.minimum(positions, n - 1).astype(np.int32), positions < n


def pad_rows(batch: np.ndarray, size: int) -> np.ndarray:
    """``batch`` with its last row repeated up to ``size`` rows."""
    return np.asarray(batch)[np.minimum(np.arange(size), len(batch) - 1)]


def sync(name: str) -> None:
    """Wait for every process (a no-op with one)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)

