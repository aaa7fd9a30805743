"""docs/coverage.md names only what exists: every `jaxvision.…` object imports, every script
and test file exists, every `file.py::test_name` is defined, and every chapter has rows."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "coverage.md"


def rows() -> list[list[str]]:
    lines = [line for line in TABLE.read_text().splitlines() if re.match(r"\| \d+\.\d+", line)]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def resolve(name: str) -> object:
    """``jaxvision.a.b.c`` → the object, importing the longest module prefix."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(name)


def test_every_name_in_the_coverage_table_exists():
    table = rows()
    assert {row[0].split(".")[0] for row in table} == {"8", "9", "10", "11"}
    checked = 0
    for listing, _, ours, test in table:
        for name in re.findall(r"`(jaxvision\.[\w.]+)`", ours):
            assert resolve(name) is not None, (listing, name)
            checked += 1
        for path in re.findall(r"`((?:experiments|tests)/[\w/]+\.py)(?:::(\w+))?`", ours + " " + test):
            file, function = path
            assert (ROOT / file).is_file(), (listing, file)
            if function:
                assert re.search(rf"^def {function}\(", (ROOT / file).read_text(), re.M), (listing, file, function)
            checked += 1
        assert "tests/" in test, f"listing {listing} has no test"
    assert checked >= 80


def test_the_checker_catches_a_missing_name():
    import pytest

    with pytest.raises(AttributeError):
        resolve("jaxvision.interpret.no_such_function")
