"""Model builders by name, so a checkpoint can rebuild its model (``load_model(path)``).

A leaf module: model modules import it and register their builders with ``@register``;
the book's models and the pretrained applications are found without importing them first.

A builder is a function returning a model, or a model class (built with ``rngs`` from
[model_rngs][jaxvision.models.rngs.model_rngs]). Every model it makes records a ``build_config``
(JSON: name, defining module, keyword arguments) that checkpoints store. Rebuilding imports
the defining module only if it is jaxvision's own or the caller names it as trusted: a
checkpoint is data, and a file from a stranger must not choose what code runs.
"""

import functools
import importlib
import inspect
import json
from collections.abc import Callable, Iterable

from flax import nnx

_BUILDERS: dict[str, Callable[..., nnx.Module]] = {}
# Where jaxvision's own builders live: imported on demand, so build_model("mobilenet") works
# in a fresh process without importing jaxvision.applications first.
BUILTIN_MODULES = ("jaxvision.models", "jaxvision.applications")


def _config(name: str, module: str, kwargs: dict) -> str | None:
    try:
        return json.dumps({"name": name, "module": module, "kwargs": kwargs}, sort_keys=True)
    except TypeError:  # an argument that is not a JSON value: the model cannot be rebuilt
        return None


def _register_class(cls: type, name: str) -> type:
    """Record ``build_config`` whenever ``cls`` itself (not a subclass) is constructed."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is cls:
            bound = signature.bind(self, *args, **kwargs)
            arguments = {k: v for k, v in list(bound.arguments.items())[1:] if k != "rngs"}
            self.build_config = _config(name, cls.__module__, arguments)

    cls.__init__ = __init__
    return cls


def register(builder: Callable[..., nnx.Module] | None = None, *, name: str | None = None):
    """Decorator: make a builder function or a model class available to [build_model][jaxvision.models.build_model]
    under ``name`` (default: its ``__name__``).

    A registered class records its ``build_config`` however it is constructed, so
    ``MyNet(width=8, rngs=nnx.Rngs(0))`` can be checkpointed and rebuilt by
    [load_model][jaxvision.train.load_model] (its arguments other than ``rngs`` must be JSON values).

    Examples:
        >>> from flax import nnx
        >>> from jaxvision.layers import Dense
        >>> from jaxvision.models import Model
        >>> @register(name="doctest_net")
        ... class Net(Model):
        ...     def __init__(self, width: int = 4, *, rngs: nnx.Rngs):
        ...         self.dense = Dense(3, width, rngs=rngs)
        ...     def forward(self, x, tap):
        ...         return tap("dense", self.dense(x))
        >>> Net(width=2, rngs=nnx.Rngs(0)).build_config
        '{"kwargs": {"width": 2}, "module": "jaxvision.models.registry", "name": "doctest_net"}'
        >>> build_model("doctest_net", width=5, seed=1).dense.kernel.shape
        (3, 5)
    """
    def decorate(target):
        key = name or target.__name__
        if key in _BUILDERS and _BUILDERS[key] is not target:
            previous = _BUILDERS[key]
            if (previous.__module__, previous.__qualname__) != (target.__module__, target.__qualname__):
                raise ValueError(f"register: a model named {key!r} is already registered by "
                                 f"{previous.__module__}.{previous.__qualname__}; pass register(name=...)")
        _BUILDERS[key] = _register_class(target, key) if isinstance(target, type) else target
        return target

    return decorate if builder is None else decorate(builder)


def registered() -> dict[str, str]:
    """The names [build_model][jaxvision.models.build_model] knows (jaxvision's own included), each with the module
    that defines its builder."""
    _import_builtins()
    return {name: _BUILDERS[name].__module__ for name in sorted(_BUILDERS)}


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def build_model(name: str, **kwargs) -> nnx.Module:
    """Build a registered model; records ``build_config`` (JSON) so checkpoints can rebuild it.

    Keyword arguments must be JSON values (lists for sizes), since they are saved as JSON. A
    registered class gets ``rngs=model_rngs(seed)`` from a ``seed`` argument (default 0).
    The model comes in eval mode, so a plain ``model(x)`` is inference as in Keras (no
    dropout or augmentation, BatchNorm on its moving statistics); ``fit`` trains in train
    mode without changing the model's mode.
    """
    if name not in _BUILDERS:
        _import_builtins()
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(_BUILDERS)}")
    builder = _BUILDERS[name]
    if isinstance(builder, type):
        from jaxvision.models.rngs import model_rngs

        model = builder(**{k: v for k, v in kwargs.items() if k != "seed"}, rngs=model_rngs(kwargs.get("seed", 0)))
    else:
        model = builder(**kwargs)
    # The builder's module too, so a rebuild can import builders that live outside models/.
    config = _config(name, builder.__module__, kwargs)
    if config is None:
        raise ValueError(f"build_model({name!r}): keyword arguments must be JSON values (they are saved in "
                         f"checkpoints), got {kwargs!r}")
    model.build_config = config
    model.eval()
    return model


def _trusted_names(trusted_modules: Iterable[str]) -> frozenset[str]:
    """The module names a caller trusts, exactly as given; a bare string is refused (iterating
    ``"mymodels"`` would trust the modules ``m``, ``y``, ``o``, ...)."""
    if isinstance(trusted_modules, (str, bytes)):
        raise TypeError(f"trusted_modules must be a list or tuple of module names, not the string "
                        f"{trusted_modules!r}; write trusted_modules=({trusted_modules!r},)")
    names = tuple(trusted_modules)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"trusted_modules must hold module names (strings), got {names!r}")
    return frozenset(names)


def rebuild_model(build_config: str, *, trusted_modules: Iterable[str] = (), source: str = "build_config"
                  ) -> nnx.Module:
    """Inverse of the ``build_config`` string recorded by [build_model][jaxvision.models.build_model].

    A builder that is not registered yet (by jaxvision's own modules or a module already
    imported) is imported from the module the config names only when that name is exactly one
    of ``trusted_modules``: trusting ``("mymodels",)`` admits ``mymodels`` and nothing else,
    neither ``mymodels.train`` nor ``mymodels.__main__`` (list a submodule to trust it). A
    string instead of a sequence of names is a ``TypeError``, raised before anything is read.
    Otherwise a ``ValueError`` (naming ``source``) says what to do.
    """
    trusted = _trusted_names(trusted_modules)
    try:
        config = json.loads(build_config)
        name, module, kwargs = config["name"], config.get("module", ""), config["kwargs"]
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:
        raise ValueError(f"{source}: malformed build_config ({type(e).__name__}: {str(e)[:200]})") from None
    if not (isinstance(name, str) and isinstance(module, str) and isinstance(kwargs, dict)):
        raise ValueError(f"{source}: malformed build_config: name and module must be strings and kwargs an "
                         f"object, got {type(name).__name__}, {type(module).__name__}, {type(kwargs).__name__}")
    if name not in _BUILDERS:
        _import_builtins()
    if name not in _BUILDERS:
        if module == "__main__":
            raise ValueError(f"{source}: model {name!r} was registered in a script (__main__), which another "
                             "process cannot import; move the builder into a module (e.g. mymodels.py) and "
                             "register it there, or build the model yourself and call jaxvision.train.restore")
        if module not in trusted:
            raise ValueError(f"{source}: model {name!r} is defined in module {module!r}, which is not imported; "
                             f"import {module} first, or pass trusted_modules=({module!r},) to allow importing it")
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"{source}: cannot import module {module!r} that defines model {name!r}: {error}") \
                from None
        if name not in _BUILDERS:
            raise ValueError(f"{source}: module {module!r} was imported but registers no model {name!r}")
    try:
        return build_model(name, **kwargs)
    except TypeError as e:  # keyword arguments the builder does not take
        raise ValueError(f"{source}: model {name!r} cannot be built from the recorded kwargs: {e}") from None
