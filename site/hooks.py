"""MkDocs hooks: the repository's own Markdown files (SECURITY.md, CHANGELOG.md, RESULTS.md,
BENCHMARKS.md) become pages without being copied, and ``<!-- results: PREFIX -->`` in a page
becomes the RESULTS.md table rows of the runs whose names start with PREFIX (book number
beside ours), so the chapter pages can never disagree with RESULTS.md."""

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT_PAGES = {"security.md": "SECURITY.md", "changelog.md": "CHANGELOG.md", "results.md": "RESULTS.md",
              "benchmarks.md": "BENCHMARKS.md"}


def _root(config) -> Path:
    return Path(config["config_file_path"]).parent


def on_files(files, config):
    for uri, name in ROOT_PAGES.items():
        files.append(File.generated(config, uri, content=(_root(config) / name).read_text()))
    return files


def results_rows(results: str, prefix: str) -> str:
    """Every RESULTS.md table row whose run starts with ``prefix``, under its table's header."""
    out, header = [], None
    for line in results.splitlines():
        if line.startswith("| run "):
            header = line
        elif line.startswith(f"| {prefix}") and header is not None:
            columns = header.count("|")
            if not out or out[-1][0] != header:
                out.append((header, columns, []))
            out[-1][2].append(line)
    tables = [f"{h}\n{'|---' * (c - 1)}|\n" + "\n".join(rows) for h, c, rows in out]
    return "\n\n".join(tables) if tables else f"(no RESULTS.md rows for {prefix} yet)"


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")
    for uri, name in ROOT_PAGES.items():
        markdown = markdown.replace(f"]({name})", f"]({'../' * depth}{uri})")
    results = (_root(config) / "RESULTS.md").read_text()
    return re.sub(r"<!-- results: (\S+) -->", lambda m: results_rows(results, m.group(1)), markdown)
