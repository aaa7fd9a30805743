"""Model builders by name, so a checkpoint can rebuild its model (``load_model(path)``).

A leaf module: model modules import it and register their builders with ``@register``;
importing :mod:`jaxvision.models` registers the book's models.
"""

import importlib
import json
from collections.abc import Callable

from flax import nnx

_BUILDERS: dict[str, Callable[..., nnx.Module]] = {}


def register(builder: Callable[..., nnx.Module]) -> Callable[..., nnx.Module]:
    """Decorator: make ``builder`` available to :func:`build_model` under its function name."""
    _BUILDERS[builder.__name__] = builder
    return builder


def build_model(name: str, **kwargs) -> nnx.Module:
    """Build a registered model; records ``build_config`` (JSON) so checkpoints can rebuild it.

    Keyword arguments must be JSON values (lists for sizes), since they are saved as JSON.
    The model comes in eval mode, so a plain ``model(x)`` is inference as in Keras (no
    dropout or augmentation, BatchNorm on its moving statistics); ``fit`` trains in train
    mode without changing the model's mode.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(_BUILDERS)}")
    model = _BUILDERS[name](**kwargs)
    # The builder's module too, so a rebuild can import builders that live outside models/.
    model.build_config = json.dumps({"name": name, "module": _BUILDERS[name].__module__, "kwargs": kwargs},
                                    sort_keys=True)
    model.eval()
    return model


def rebuild_model(build_config: str) -> nnx.Module:
    """Inverse of the ``build_config`` string recorded by :func:`build_model`."""
    config = json.loads(build_config)
    if config["name"] not in _BUILDERS and config.get("module", "").startswith("jaxvision."):
        importlib.import_module(config["module"])
    return build_model(config["name"], **config["kwargs"])
