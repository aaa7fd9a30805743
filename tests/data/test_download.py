"""data_root and fetch: env override, checksum, atomic write, mirror fallback."""

import hashlib
from pathlib import Path

import pytest

from jaxvision.data import data_root, fetch


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXVISION_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("JAXVISION_DATA")
    assert data_root() == Path.home() / ".cache" / "jaxvision"


def test_fetch_verifies_and_falls_back_to_the_next_mirror(tmp_path):
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(b"payload" * 1000)
    bad.write_bytes(b"tampered")
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    assert fetch([bad.as_uri(), good.as_uri()], dest, sha) == dest
    assert dest.read_bytes() == good.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # temp file renamed away
    dest.write_bytes(b"kept")  # an existing file is not fetched again
    assert fetch([bad.as_uri()], dest, sha).read_bytes() == b"kept"


def test_fetch_failure_names_urls_and_destination(tmp_path):
    (tmp_path / "bad.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "file.bin"
    urls = [(tmp_path / "bad.bin").as_uri(), (tmp_path / "missing.bin").as_uri()]
    with pytest.raises(RuntimeError) as info:
        fetch(urls, dest, "0" * 64)
    message = str(info.value)
    assert "sha256 mismatch" in message and "missing.bin" in message and str(dest) in message
    assert list(dest.parent.iterdir()) == []  # nothing half-written where a loader would look
