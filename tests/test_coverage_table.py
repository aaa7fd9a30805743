"""The book cited to the letter. `tests/book_listings.md` is the book's index of listing and
figure numbers (ch. 8–11, with captions). Checked against it: every row of docs/coverage.md (its
numbers and captions, the count at its top) and every "listing N.M" / "figure N.M" cited anywhere
in the project — docstrings, test names, experiment docstrings, guides, figure titles and file
names. And docs/coverage.md names only what exists: every `jaxvision.…` object imports, every
script and test file exists, every `file.py::test_name` is defined."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "coverage.md"
INDEX = ROOT / "tests" / "book_listings.md"
SCANNED = ("jaxvision", "experiments", "tests", "docs", "bench")
NUMBER = r"\d+[._]\d+"
# "listing 8.1", "Listings 8.25–8.31", "figures 11.3 and 11.4", "figure 8.8, 8.10": prose; and
# "test_listing_8_5_…", "figures_11_9_to_11_15", "figure_10_2.png", "FIGURE_10_2": identifiers.
CITATION = re.compile(rf"(?<![A-Za-z])(listings?|figures?)[ _]({NUMBER}(?:(?:\s*[–-]\s*|,\s*|\s+and\s+|\s+to\s+|_and_|_to_|-)"
                      rf"{NUMBER})*)", re.IGNORECASE)


def book_index() -> dict[str, dict[str, str]]:
    """{"listing": {"8.1": caption, …}, "figure": {…}} from the committed copy of the book's index."""
    index, kind = {"listing": {}, "figure": {}}, None
    for line in INDEX.read_text().splitlines():
        if line.startswith("## "):
            kind = "listing" if "Listings" in line else "figure"
        elif kind and (m := re.match(r"\| (\d+\.\d+) \| (.+) \|$", line)):
            index[kind][m[1]] = m[2]
    return index


def citations(text: str) -> list[tuple[str, str]]:
    """Every cited (kind, number) in ``text``: ("listing", "8.25"), ("figure", "11.13"), …"""
    found = []
    for m in CITATION.finditer(text):
        kind = "listing" if m[1].lower().startswith("listing") else "figure"
        found += [(kind, number.replace("_", ".")) for number in re.findall(NUMBER, m[2])]
    return found


def scanned_files() -> list[Path]:
    files = [p for folder in SCANNED for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md")]
    files += [p for p in ROOT.iterdir() if p.suffix in (".md", ".yml") or p.name == "Makefile"]
    return [p for p in files if p != INDEX and p.is_file()]


def rows() -> list[list[str]]:
    lines = [line for line in TABLE.read_text().splitlines() if re.match(r"\| (\d+\.\d+|ch\. \d+ \*)", line)]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def listings_of(cell: str) -> list[str]:
    """"8.3–8.4" → ["8.3", "8.4"]; a "ch. N *Section*" row → []."""
    if not (m := re.fullmatch(r"(\d+)\.(\d+)(?:–\1\.(\d+))?", cell)):
        assert re.fullmatch(r"ch\. (8|9|10|11) \*[^*]+\*", cell), f"coverage row {cell!r}: neither N.M[–N.M] nor ch. N *Section*"
        return []
    first, last = int(m[2]), int(m[3] or m[2])
    assert first <= last, cell
    return [f"{m[1]}.{i}" for i in range(first, last + 1)]


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
    assert {re.search(r"\d+", row[0])[0] for row in table} == {"8", "9", "10", "11"}
    checked = 0
    for book, _, ours, test, _ in table:
        for name in re.findall(r"`(jaxvision\.[\w.]+)`", ours):
            assert resolve(name) is not None, (book, name)
            checked += 1
        for path in re.findall(r"`((?:experiments|tests)/[\w/]+\.py)(?:::(\w+))?`", ours + " " + test):
            file, function = path
            assert (ROOT / file).is_file(), (book, file)
            if function:
                assert re.search(rf"^def {function}\(", (ROOT / file).read_text(), re.M), (book, file, function)
            checked += 1
        assert "tests/" in test, f"{book} has no test"
    assert checked >= 150


def test_coverage_rows_carry_the_books_numbers_and_captions_and_the_count_is_the_tables():
    captions = book_index()["listing"]
    status = {"yes": 0, "partly": 0, "no": 0}
    seen = []
    for book, caption, _, _, reproduced in rows():
        numbers = listings_of(book)
        for number in numbers:
            assert number in captions, f"coverage row {book}: the book has no listing {number}"
        if numbers:
            assert caption == "; ".join(captions[n] for n in numbers), f"coverage row {book}: not the book's caption"
            blocks = len(numbers)
        else:  # unnumbered blocks: their first lines, in backticks, separated by "; "
            parts = caption.split("; ")
            assert all(part.startswith("`") for part in parts), f"coverage row {book}: {caption!r}"
            blocks = len(parts)
        kind = reproduced.split(":")[0]
        assert kind in status and (kind == "yes") == (reproduced == "yes"), f"coverage row {book}: {reproduced!r}"
        status[kind] += blocks
        seen += numbers
    assert len(seen) == len(set(seen)), "a listing has two coverage rows"
    not_applicable = {"10.11", "10.12", "10.20", "10.21"}  # the TensorFlow and PyTorch variants
    assert set(seen) == set(captions) - not_applicable
    count = re.search(r"\*\*(\d+) listings and code blocks of the book apply to jaxvision: (\d+) reproduced, "
                      r"(\d+) partly, (\d+) not\.\*\*", TABLE.read_text())
    assert count, "docs/coverage.md states no count at its top"
    assert [int(c) for c in count.groups()] == [sum(status.values()), status["yes"], status["partly"], status["no"]]


def test_every_cited_listing_and_figure_is_the_books():
    index = book_index()
    wrong, cited = [], 0
    for path in scanned_files():
        for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for kind, number in citations(line):
                cited += 1
                if number not in index[kind]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line_number}: {kind} {number}")
    assert not wrong, "cited, but not in the book's index:\n" + "\n".join(wrong)
    assert cited > 200


@pytest.mark.parametrize("text, found", [
    ("DLwP listings 8.25–8.31: …", [("listing", "8.25"), ("listing", "8.31")]),
    ("Figures 11.3 and 11.4 (``figure_11_3.png``)", [("figure", "11.3"), ("figure", "11.4"), ("figure", "11.3")]),
    ("def test_listings_9_2_and_9_3_single_conv(", [("listing", "9.2"), ("listing", "9.3")]),
    ("test_the_books_figures_11_9_to_11_15", [("figure", "11.9"), ("figure", "11.15")]),
    ("figures 11.9-11.15, chapter 11.3", [("figure", "11.9"), ("figure", "11.15")]),
])
def test_citations_are_found_in_prose_and_in_names(text, found):
    assert citations(text) == found


def test_a_wrong_number_is_caught():
    index = book_index()
    assert len(index["listing"]) == 61 and len(index["figure"]) == 26
    assert index["listing"]["9.4"] == "how not to use batch normalization"
    wrong = " ".join(["listing", "9.6,", "figure", "11.16,", "listings", "11.1–11.2"])  # spelled apart: not a citation here
    for kind, number in citations(wrong):
        assert number not in index[kind]
    with pytest.raises(AssertionError, match="neither"):
        listings_of("9.7–9.8 the mini-Xception")


def test_the_checker_catches_a_missing_name():
    with pytest.raises(AttributeError):
        resolve("jaxvision.interpret.no_such_function")
