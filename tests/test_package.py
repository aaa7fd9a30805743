"""The package surface: lazy subpackages, a version, and every public name importable and documented."""

import importlib
import inspect
import subprocess
import sys

import pytest

import jaxvision


def test_subpackages_load_lazily_and_version_comes_from_the_metadata():
    code = ("import sys, jaxvision; assert 'jaxvision.layers' not in sys.modules; "
            "print(jaxvision.layers.Conv2D.__name__, jaxvision.__version__, sorted(jaxvision.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "Conv2D"
    assert out[1] == importlib.metadata.version("jaxvision")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jaxvision.nope  # noqa: B018


@pytest.mark.parametrize("package", jaxvision.SUBPACKAGES)
def test_every_public_name_imports_and_has_a_docstring(package):
    module = getattr(jaxvision, package)
    assert module.__doc__ and module.__doc__.strip()
    assert module.__all__, f"jaxvision.{package} lists no public names"
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)  # AttributeError: __all__ names something that is not there
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (inspect.getdoc(obj) or "").strip():
            undocumented.append(name)
    assert not undocumented, f"jaxvision.{package}: no docstring for {undocumented}"


def test_build_model_finds_applications_without_importing_them_first():
    code = ("from jaxvision.models import build_model; "
            "m = build_model('mobilenet', alpha=0.25, include_top=False); print(type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "MobileNetV1"
