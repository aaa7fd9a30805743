"""Shared test set-up: Keras 3 is a reference only, always on the JAX backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
# The suite is compile-bound (most programs run once, on tiny inputs): LLVM's -O0 halves the CPU
# time of XLA:CPU's compiles. It changes code generation, not HLO semantics, so every tolerance
# holds; benchmarks and experiments keep XLA's default. Set the flag yourself to override it.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
# Absolute, so that tests which start a process in another folder (the wheel's smoke run) or
# link to the data from a temporary folder find it: `make test` passes ../shared/data.
if os.environ.get("JAXVISION_DATA"):
    os.environ["JAXVISION_DATA"] = os.path.abspath(os.path.expanduser(os.environ["JAXVISION_DATA"]))

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Fuzz tests: "ci" (default) is derandomized, so every run tries the same cases, and small
# enough for CI's budget; HYPOTHESIS_PROFILE=dev searches more and at random.
# Scripts that write reference fixtures with torch (never installed in CI): not test modules.
collect_ignore = ["interpret/make_attribution_fixtures.py"]

settings.register_profile("ci", max_examples=250, deadline=10_000, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=1000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the JAX backend, imported once for parity tests."""
    import keras as keras_module

    assert keras_module.backend.backend() == "jax"
    return keras_module


@pytest.fixture(autouse=True)
def _restore_dtype_policy():
    """Experiments set the global dtype policy (``--dtype``); no test leaks it into the next."""
    from jaxvision.layers import global_policy, set_global_policy

    previous = global_policy()
    yield
    set_global_policy(previous)


@pytest.fixture
def x64():
    """float64 for finite-difference gradient checks, restored afterwards for other tests."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
