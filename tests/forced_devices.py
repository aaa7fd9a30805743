"""The environment for a test's subprocess that sees ``count`` CPU devices."""

import os


def forced_cpu_devices(count: int) -> dict[str, str]:
    """This process's environment with ``count`` forced CPU devices, its other XLA flags kept
    (the suite's compile settings from ``conftest.py`` reach the subprocess too)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    return dict(os.environ, XLA_FLAGS=" ".join([*flags, f"--xla_force_host_platform_device_count={count}"]),
                JAX_PLATFORMS="cpu")
