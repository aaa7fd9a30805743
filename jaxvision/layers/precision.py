"""Keras-like dtype policies: the dtype a layer computes in and the dtype its parameters are stored in.

``"float32"`` computes and stores in float32; ``"mixed_bfloat16"`` computes in bfloat16 and keeps
float32 parameters (the optimizer updates float32 values; each call casts them); ``"bfloat16"``
does both in bfloat16. Any other floating dtype name (``"float64"``, ``"float16"``…) is a
policy that computes and stores in that dtype, as Keras's ``DTypePolicy`` allows.

As in Keras, every layer casts floating inputs to its compute dtype, so a bfloat16 batch
entering a float32 model is computed in float32 rather than failing. Some values stay in
float32 whatever the policy, because bfloat16's 8-bit mantissa is too coarse for them:
BatchNormalization statistics, softmax and sigmoid outputs, losses and data augmentation.

The global policy is read when a layer is built; change it with
[set_global_policy][jaxvision.layers.set_global_policy], for
one block of code with [policy_scope][jaxvision.layers.policy_scope], for one layer with its ``dtype`` argument, or
for a built model with [set_policy][jaxvision.layers.set_policy].

Examples:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> from jaxvision.layers import Dense
    >>> with policy_scope("mixed_bfloat16"):
    ...     layer = Dense(3, 4, rngs=nnx.Rngs(0))
    >>> layer.kernel.dtype, layer(jnp.ones((2, 3))).dtype
    (dtype('float32'), dtype(bfloat16))
    >>> global_policy().name
    'float32'
"""

import contextlib
import dataclasses
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

MIXED = {"mixed_bfloat16": "bfloat16"}  # mixed_float16 needs loss scaling, which jaxvision does not provide


@dataclasses.dataclass(frozen=True)
class Policy:
    """A named pair of dtypes: ``compute_dtype`` for the arithmetic, ``param_dtype`` for storage."""

    name: str
    compute_dtype: np.dtype
    param_dtype: np.dtype


PolicyLike = str | np.dtype | type | Policy


def get_policy(policy: PolicyLike) -> Policy:
    """A [Policy][jaxvision.layers.Policy] from its name (``"mixed_bfloat16"``), a floating dtype, or a policy."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str) and policy in MIXED:
        return Policy(policy, np.dtype(jnp.dtype(MIXED[policy])), np.dtype("float32"))
    try:
        dtype = jnp.dtype(policy)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"unknown dtype policy {policy!r}; use 'float32', 'mixed_bfloat16', 'bfloat16' "
                         "or another floating dtype")
    return Policy(dtype.name, dtype, dtype)


_global_policy = get_policy("float32")


def global_policy() -> Policy:
    """The policy layers built without a ``dtype`` argument take."""
    return _global_policy


def set_global_policy(policy: PolicyLike) -> None:
    """Set the policy of layers built from now on (like ``keras.mixed_precision.set_global_policy``)."""
    global _global_policy
    _global_policy = get_policy(policy)


@contextlib.contextmanager
def policy_scope(policy: PolicyLike) -> Iterator[Policy]:
    """Build the layers of one model under ``policy``; the previous global policy returns after."""
    previous = global_policy()
    set_global_policy(policy)
    try:
        yield global_policy()
    finally:
        set_global_policy(previous)


def layer_dtypes(dtype: PolicyLike | None, param_dtype: PolicyLike | None) -> tuple[np.dtype, np.dtype]:
    """A layer's ``(compute, param)`` dtypes from its ``dtype`` (policy name or dtype; ``None`` is
    the global policy) and ``param_dtype`` (``None`` is the policy's)."""
    policy = global_policy() if dtype is None else get_policy(dtype)
    param = policy.param_dtype if param_dtype is None else get_policy(param_dtype).param_dtype
    return policy.compute_dtype, param


def at_least_float32(dtype) -> np.dtype:
    """float32 for half-precision dtypes; wider dtypes (float64 under x64) are kept."""
    return np.dtype(jnp.promote_types(dtype, jnp.float32))


def autocast(x: jax.Array, dtype) -> jax.Array:
    """Keras's input autocast: floating arrays to ``dtype``, anything else untouched."""
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype else x


def set_policy(model: nnx.Module, policy: PolicyLike) -> nnx.Module:
    """Give every layer of an existing ``model`` the ``policy``: its compute dtype, and its
    parameters cast to the policy's parameter dtype (statistics stay at least float32). Returns
    ``model``, changed in place. Use it before building the optimizer state.

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import BatchNormalization
        >>> bn = set_policy(BatchNormalization(2, rngs=nnx.Rngs(0)), "bfloat16")
        >>> bn.dtype, bn.gamma.dtype, bn.moving_mean.dtype
        (dtype(bfloat16), dtype(bfloat16), dtype('float32'))
    """
    policy = get_policy(policy)
    for _, module in nnx.iter_modules(model):
        if not hasattr(module, "dtype"):
            continue
        module.dtype = policy.compute_dtype
        if hasattr(module, "param_dtype"):
            module.param_dtype = policy.param_dtype
        for variable in vars(module).values():  # the layer's own variables; sub-layers come in turn
            if isinstance(variable, nnx.Param):
                variable.set_value(variable[...].astype(policy.param_dtype))
            elif isinstance(variable, nnx.BatchStat):
                variable.set_value(variable[...].astype(at_least_float32(policy.param_dtype)))
    return model
