"""Output files are written whole or not at all."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from zoo.files import atomic_path

SLOW_WRITER = """
import sys, time
from zoo.files import atomic_path

with atomic_path(sys.argv[1]) as temporary, open(temporary, "wb") as file:
    file.write(b"half")
    file.flush()
    print("writing", flush=True)
    time.sleep(60)
    file.write(b" and the rest")
"""

SLOW_COMMAND = """
import sys, time
import click
from zoo.cli import cli
from zoo.files import atomic_path

@cli.command("slow-write")
@click.argument("path")
def slow_write(path):
    with atomic_path(path) as temporary:
        temporary.write_bytes(b"half")
        print("writing", flush=True)
        time.sleep(60)

cli(["slow-write", sys.argv[1]], prog_name="zoo")
"""


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


def terminated_while_writing(script: str, target: Path) -> subprocess.CompletedProcess:
    """Run a script that writes `target` through atomic_path, and SIGTERM it mid-write."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "writing\n", process.stderr.read()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_sigterm_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    result = terminated_while_writing(SLOW_WRITER, target)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert result.stderr == ""  # an exit, not a traceback
    assert os.listdir(tmp_path) == ["out.bin"]
    assert target.read_bytes() == b"old"


def test_the_cli_says_terminated_in_one_line_and_exits_143(tmp_path):
    target = tmp_path / "out.bin"
    result = terminated_while_writing(SLOW_COMMAND, target)
    assert (result.returncode, result.stderr) == (143, "zoo: terminated\n")
    assert os.listdir(tmp_path) == []


def test_sigterm_has_its_default_action_again_once_the_write_ends(tmp_path):
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with atomic_path(tmp_path / "a") as first, atomic_path(tmp_path / "b") as second:
        first.write_bytes(b"a")
        second.write_bytes(b"b")
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "c"):
        raise RuntimeError("disk full")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_programs_own_sigterm_handler_is_left_in_place(tmp_path):
    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with atomic_path(tmp_path / "out.bin") as temporary:
            temporary.write_bytes(b"data")
            assert signal.getsignal(signal.SIGTERM) is own
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_writing_from_another_thread_works_without_the_handler(tmp_path):
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with atomic_path(tmp_path / "out.bin") as temporary:
                temporary.write_bytes(b"from a thread")
                assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert errors == []
    assert (tmp_path / "out.bin").read_bytes() == b"from a thread"
