"""The documentation site builds strictly into a temporary folder (one ``mkdocs build``, about
15 s on 2 cores), changes no tracked file, prints no end-of-life notice, and renders clean:
no raw Sphinx role, no escaped table pipe, docstring cross-references as links, and code
blocks that wrap rather than being cut at the page's width."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|py:\w+):`?")


def tracked_changes() -> str | None:
    """``git status`` of the tracked files (``None`` outside a git checkout)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_the_site_builds_clean_without_touching_a_tracked_file(tmp_path):
    site, before = tmp_path / "site", tracked_changes()
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "end of life" not in built.stderr and "WARNING" not in built.stderr
    assert tracked_changes() == before
    pages = {path.relative_to(site).as_posix(): path.read_text() for path in site.rglob("*.html")}
    assert len([p for p in pages if p.startswith("api/")]) >= 11
    text = {page: re.sub(r"<[^>]+>", "", html) for page, html in pages.items()}  # what a reader sees
    roles = {page: SPHINX_ROLE.findall(t) for page, t in text.items() if SPHINX_ROLE.search(t)}
    assert not roles, roles
    pipes = {page: t.count("\\|") for page, t in text.items() if "\\|" in t}
    assert not pipes, pipes
    # A converted docstring reference is a link to its target's page.
    assert re.search(r'<a[^>]+href="\.\./train/#jaxvision\.train\.load_model"', pages["api/export/index.html"])
    css = (site / "stylesheets" / "extra.css").read_text()
    assert re.search(r"pre > code \{[^}]*white-space: pre-wrap", css)
    assert all('stylesheets/extra.css"' in html for page, html in pages.items() if page != "404.html")
