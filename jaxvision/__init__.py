"""jaxvision: Keras-exact vision building blocks on jax.lax, as Flax NNX modules.

The subpackages load on first use, so ``import jaxvision`` is cheap and
``jaxvision.layers.Conv2D`` works without a separate import:

Examples:
    >>> import jaxvision
    >>> jaxvision.layers.Conv2D.__name__, isinstance(jaxvision.__version__, str)
    ('Conv2D', True)
"""

import importlib
from importlib import metadata

SUBPACKAGES = ("applications", "data", "debug", "export", "interpret", "layers", "models", "optimizers", "train",
               "weights")

try:
    __version__ = metadata.version("jaxvision")  # single source: pyproject.toml
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", *SUBPACKAGES]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        return importlib.import_module(f"jaxvision.{name}")
    raise AttributeError(f"module 'jaxvision' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBPACKAGES))
