"""The package surface: lazy subpackages, a version, every public name importable and
documented; the wheel installs and runs in a fresh venv; the documentation builds strictly."""

import importlib
import importlib.metadata
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_the_wheel_builds_installs_in_a_fresh_venv_and_runs(tmp_path):
    """``python -m build`` makes the sdist and the wheel; the wheel, installed (not editable)
    into a new venv whose dependencies come from this one's site-packages (so CI downloads
    nothing but the build backend), runs the smoke script from outside the source tree."""
    import sysconfig

    root = Path(__file__).resolve().parents[1]
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(root)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    version = importlib.metadata.version("jaxvision")
    wheel = tmp_path / "dist" / f"jaxvision-{version}-py3-none-any.whl"
    assert wheel.is_file() and (tmp_path / "dist" / f"jaxvision-{version}.tar.gz").is_file()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies from this venv, appended after the new venv's own site-packages.
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   timeout=300)
    smoke = subprocess.run([python, str(root / "tests" / "smoke_wheel.py")], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    lines = smoke.stdout.splitlines()
    assert lines[0].startswith(f"version {version} loss ")
    if (Path(os.environ.get("JAXVISION_DATA", "/nonexistent")) / "images" / "elephant.jpg").is_file():
        assert lines[1].startswith("elephant African_elephant 0.60")


SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|py:\w+):`?")


def tracked_changes(root: Path) -> str | None:
    """``git status`` of the tracked files (``None`` outside a git checkout)."""
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                          text=True, check=True).stdout


def test_the_documentation_builds_strictly(tmp_path):
    """``make docs``: a broken link, a missing figure or an unresolvable reference fails it; the
    build changes no tracked file and prints no end-of-life notice; the pages render clean: no
    raw Sphinx role, no escaped table pipe, docstring references as links, code blocks that wrap."""
    root, site = Path(__file__).resolve().parents[1], tmp_path / "site"
    before = tracked_changes(root)
    done = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                          cwd=root, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "end of life" not in done.stderr and "WARNING" not in done.stderr
    assert tracked_changes(root) == before
    assert (site / "api" / "debug" / "index.html").is_file()
    chapter = (site / "chapters" / "ch08" / "index.html").read_text()
    assert "0.6770" in chapter and "figure_8_10.png" in chapter  # RESULTS.md rows and the figures
    assert "load_exported" in (site / "api" / "export" / "index.html").read_text()
    pages = {path.relative_to(site).as_posix(): path.read_text() for path in site.rglob("*.html")}
    text = {page: re.sub(r"<[^>]+>", "", html) for page, html in pages.items()}  # what a reader sees
    roles = {page: SPHINX_ROLE.findall(t) for page, t in text.items() if SPHINX_ROLE.search(t)}
    assert not roles, roles
    pipes = {page: t.count("\\|") for page, t in text.items() if "\\|" in t}
    assert not pipes, pipes
    # A docstring's cross-reference is a link to its target's page.
    assert re.search(r'<a[^>]+href="\.\./train/#jaxvision\.train\.load_model"', pages["api/export/index.html"])
    assert re.search(r"pre > code \{[^}]*white-space: pre-wrap", (site / "stylesheets" / "extra.css").read_text())
    # Titled code blocks render as code, not as raw fences (```python mymodels.py showed as text).
    own_model = pages["guides/own-model/index.html"]
    assert all(f'<span class="filename">{name}' in own_model for name in ("mymodels.py", "train.py", "load.py"))
    assert "```" not in text["guides/own-model/index.html"]
    assert all('stylesheets/extra.css"' in html for page, html in pages.items() if page != "404.html")
