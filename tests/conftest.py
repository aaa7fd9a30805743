"""Shared test set-up: Keras 3 is a reference only, always on the JAX backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

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
