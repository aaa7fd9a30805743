"""What ran a piece of work, for ``metrics.json`` and benchmark records: the device and the
versions of the libraries whose numbers it depends on."""

import importlib.metadata
import os
import platform

import jax

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "grain", "orbax-checkpoint", "numpy", "jaxvision")


def device_description() -> str:
    """``cpu (2 cores, x86_64)`` or ``gpu (NVIDIA H100 80GB HBM3)``, plus the device count
    when there are several.

    Examples:
        >>> device_description().split(" ")[0] in ("cpu", "gpu", "tpu")
        True
    """
    devices = jax.devices()
    device = devices[0]
    what = (f"cpu ({os.cpu_count()} cores, {platform.machine()})" if device.platform == "cpu"
            else f"{device.platform} ({device.device_kind})")
    return what if len(devices) == 1 else f"{len(devices)} × {what}"


def library_versions() -> dict[str, str]:
    """Installed versions of ``LIBRARIES`` (``"not installed"`` for a missing one).

    Examples:
        >>> sorted(library_versions()) == sorted(LIBRARIES)
        True
    """
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
