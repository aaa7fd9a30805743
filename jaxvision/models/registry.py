"""Model builders by name, so a checkpoint can rebuild its model (``load_model(path)``)."""

import importlib
import json
from collections.abc import Callable

from flax import nnx

_BUILDERS: dict[str, Callable[..., nnx.Module]] = {}


def register(builder: Callable[..., nnx.Module]) -> Callable[..., nnx.Module]:
    """Decorator: make ``builder`` available to :func:`build_model` under its function name."""
    _BUILDERS[builder.__name__] = builder
    return builder


def _import_book_models() -> None:
    # Imported on demand: the model modules register themselves, and importing them eagerly
    # here would make every registry user pay for (and depend on) all layers.
    from jaxvision.models import convnets, segmentation, xception  # noqa: F401


def build_model(name: str, **kwargs) -> nnx.Module:
    """Build a registered model; records ``build_config`` (JSON) so checkpoints can rebuild it.

    Keyword arguments must be JSON values (lists for sizes), since they are saved as JSON.
    """
    if name not in _BUILDERS:
        _import_book_models()
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(_BUILDERS)}")
    model = _BUILDERS[name](**kwargs)
    # The builder's module too, so a rebuild can import builders that live outside models/.
    model.build_config = json.dumps({"name": name, "module": _BUILDERS[name].__module__, "kwargs": kwargs},
                                    sort_keys=True)
    return model


def rebuild_model(build_config: str) -> nnx.Module:
    """Inverse of the ``build_config`` string recorded by :func:`build_model`."""
    config = json.loads(build_config)
    if config["name"] not in _BUILDERS and config.get("module", "").startswith("jaxvision."):
        importlib.import_module(config["module"])
    return build_model(config["name"], **config["kwargs"])
