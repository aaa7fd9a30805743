"""Helpers shared by the layer tests: fast parameter keys, training mode, Keras's output-size
rule, and the float64 finite-difference gradient check."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.test_util import check_grads

from jaxvision.layers import set_policy


def fast_rngs() -> nnx.Rngs:
    """RBG keys: each new kernel shape compiles its initialiser ~3x faster than with threefry."""
    return nnx.Rngs(params=jax.random.key(0, impl="rbg"))


def training(module: nnx.Module) -> nnx.Module:
    """``module`` switched to training mode (layers start in inference mode, as in Keras)."""
    module.train()
    return module


def expected_spatial(size, kernel, strides, padding, dilation) -> tuple[int, ...]:
    """Output (height, width) of a convolution, by Keras's rule for "valid" and "same"."""
    kernel, strides, dilation = ((v, v) if isinstance(v, int) else v for v in (kernel, strides, dilation))
    if padding == "same":
        return tuple(math.ceil(n / s) for n, s in zip(size, strides))
    return tuple((n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(size, kernel, strides, dilation))


def check_layer_grads(layer: nnx.Module, input_shape: tuple[int, ...], seed: int) -> None:
    """Finite differences wrt the input and every parameter, in float64 (needs the ``x64``
    fixture; the layer is switched to the float64 policy), at params + 0.1 so a zero-initialised
    bias is non-zero."""
    graphdef, params = nnx.split(set_policy(layer, "float64"), nnx.Param)
    params = jax.tree.map(lambda v: v + 0.1, params)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=input_shape))

    @jax.jit
    def apply(params, x):
        return nnx.merge(graphdef, params)(x)

    assert apply(params, x).dtype == jnp.float64
    check_grads(apply, (params, x), order=1, modes=("fwd", "rev"))
