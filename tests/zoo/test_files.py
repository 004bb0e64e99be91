"""Output files are written whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from zoo.files import atomic_path


def test_the_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"complete")
        assert not target.exists()
        assert temporary.parent == tmp_path
    assert target.read_bytes() == b"complete"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_permissions_follow_the_umask_as_for_a_plain_file(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with atomic_path(tmp_path / "atomic") as temporary:
        temporary.write_bytes(b"")
    mode = stat.S_IMODE
    assert mode((tmp_path / "atomic").stat().st_mode) == mode(plain.stat().st_mode)
