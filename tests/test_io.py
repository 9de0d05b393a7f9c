"""Atomic writes: complete or absent, with ordinary permissions."""

import os
import stat

import pytest

from gridformer._io import atomic_path, write_json


def _crashing_write(target, text):
    with atomic_path(target) as tmp:
        tmp.write_text(text)
        raise RuntimeError("writer crashed")


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="writer crashed"):
        _crashing_write(target, "partial")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(tmp_path):
    target = write_json({"a": 1}, tmp_path / "out.json")
    with pytest.raises(RuntimeError, match="writer crashed"):
        _crashing_write(target, "{")
    assert target.read_text().strip().startswith("{\n")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_new_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        target = write_json({"a": 1}, tmp_path / "out.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
