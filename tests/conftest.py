"""Shared test set-up: Keras 3 is a reference only, always on the JAX backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the JAX backend, imported once for parity tests."""
    import keras as keras_module

    assert keras_module.backend.backend() == "jax"
    return keras_module
