"""Hostile output paths, interrupted writes and concurrent writers (issue 17, classes 5, 12, 13).

Class 5: an output that cannot be written is refused by a pre-flight check before any long
work, in one line naming the path (exit 2), and a write that still fails (a full disk) leaves
nothing behind. Class 12: a new output directory appears only complete, whatever signal
stops the writer. Class 13: a second writer of the same directory is refused while the first
writes. Each test here failed on the code before its fix.

The subprocess tests use the private hook of :mod:`superpose._atomic`: with
``_SUPERPOSE_PAUSE_BEFORE_RENAME=FLAG`` the writer creates FLAG once every temporary file is
written and waits until FLAG is deleted, so the signal lands exactly mid-write.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from helpers import assert_one_line_error, run

import superpose.pipeline
from superpose import SuperposeError, Task, build, load_network, save_network
from superpose._atomic import remove_stale_temporaries
from superpose.io import META_FILE, WEIGHTS_FILE

SMALL = ("--family", "and2", "--features", "40", "--outputs", "200", "--construction", "naive")
CLI = [sys.executable, "-c", "from superpose.cli import main; main()"]
PAUSE = "_SUPERPOSE_PAUSE_BEFORE_RENAME"


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if a build starts: the pre-flight must refuse before any long work."""

    def boom(*args, **kwargs):
        raise AssertionError("the build ran before the output path was checked")

    monkeypatch.setattr(superpose.pipeline, "build", boom)


def sweep_spec(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"grid": {"family": "and2", "outputs": 9}}))
    return path


def network_files(d: Path) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in (META_FILE, WEIGHTS_FILE) if (d / n).exists()}


# --- class 5: output paths that cannot be written ---------------------------------------------


def test_output_under_a_regular_file(tmp_path, capsys, no_build):
    (tmp_path / "f").write_text("keep")
    code, _, err = run(capsys, "build", *SMALL, "--out", tmp_path / "f" / "net")
    assert_one_line_error(code, err, "--out", "f is a file, not a directory")
    code, _, err = run(capsys, "report", tmp_path / "r.sqlite", "--out", tmp_path / "f" / "rep")
    assert_one_line_error(code, err, "--out", "f is a file, not a directory")
    spec = sweep_spec(tmp_path)
    code, _, err = run(capsys, "sweep", spec, "--results", tmp_path / "f" / "r.sqlite")
    assert_one_line_error(code, err, "--results", "f is a file, not a directory")
    assert (tmp_path / "f").read_text() == "keep"


def test_output_under_proc(tmp_path, capsys, no_build):
    code, _, err = run(capsys, "build", *SMALL, "--out", "/proc/superpose-test/net")
    assert_one_line_error(code, err, "/proc/superpose-test/net", "cannot create files in /proc")
    spec = sweep_spec(tmp_path)
    code, _, err = run(capsys, "sweep", spec, "--results", "/proc/superpose-test.sqlite")
    assert_one_line_error(code, err, "--results", "cannot create files in /proc")
    code, _, err = run(capsys, "report", tmp_path / "r.sqlite", "--out", "/proc/superpose-rep")
    assert_one_line_error(code, err, "--out /proc/superpose-rep", "cannot create files")


def test_name_longer_than_the_file_system_allows(tmp_path, capsys, no_build):
    code, _, err = run(capsys, "build", *SMALL, "--out", tmp_path / ("a" * 300))
    assert_one_line_error(code, err, "--out", "is 300 bytes", "255")
    # fits by itself, but not with the hidden temporary name written beside it
    code, _, err = run(capsys, "build", *SMALL, "--out", tmp_path / ("b" * 250))
    assert_one_line_error(code, err, "is 250 bytes", "room for the temporary name")
    assert os.listdir(tmp_path) == []


def test_read_only_directory(tmp_path, capsys, monkeypatch, no_build):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: refuse files in `ro` as the kernel would
        real = tempfile.mkstemp

        def mkstemp(*args, **kwargs):
            if Path(kwargs.get("dir", "")) == ro:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    try:
        code, _, err = run(capsys, "build", *SMALL, "--out", ro / "net")
        assert_one_line_error(code, err, "--out", "cannot create files in", "Permission denied")
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_full_disk_is_refused_up_front(tmp_path, capsys, monkeypatch, no_build):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=4096))
    code, _, err = run(capsys, "build", *SMALL, "--out", tmp_path / "net")
    assert_one_line_error(code, err, "--out", "4.0 KiB free", "needed")
    code, _, err = run(capsys, "sweep", sweep_spec(tmp_path), "--results", tmp_path / "r.sqlite")
    assert_one_line_error(code, err, "--results", "free")
    assert sorted(os.listdir(tmp_path)) == ["s.yaml"]


def test_disk_filling_during_the_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    """ENOSPC after the pre-flight: one line, no empty directory, the old network intact."""
    old = tmp_path / "old"
    assert run(capsys, "build", *SMALL, "--out", old)[0] == 0
    before = network_files(old)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(capsys, "build", *SMALL, "--out", tmp_path / "a" / "net", "--seed", "1")
    assert_one_line_error(code, err, "net", "No space left on device")
    code, _, err = run(capsys, "build", *SMALL, "--out", old, "--seed", "1")
    assert_one_line_error(code, err, "old", "No space left on device")
    assert sorted(os.listdir(tmp_path)) == ["old"]  # no a/, no hidden temporaries
    assert sorted(os.listdir(old)) == [META_FILE, WEIGHTS_FILE]
    assert network_files(old) == before


def test_empty_and_foreign_output_directories(tmp_path, capsys, monkeypatch, no_build):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "build", *SMALL, "--out", "")
    assert_one_line_error(code, err, "--out", "empty path")
    code, _, err = run(capsys, "report", "r.sqlite", "--out", "")
    assert_one_line_error(code, err, "--out", "empty path")
    code, _, err = run(capsys, "sweep", sweep_spec(tmp_path), "--results", "")
    assert_one_line_error(code, err, "--results", "empty path")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"meow")
    code, _, err = run(capsys, "build", *SMALL, "--out", photos)
    assert_one_line_error(code, err, "photos", "not empty", "'cat.jpg'", "new or empty directory")
    assert os.listdir(photos) == ["cat.jpg"]
    with pytest.raises(SuperposeError, match="holds no superpose network"):
        save_network(build(Task.from_gates(2, 2, [("and", [0, 1])]), "naive"), photos)
    assert sorted(os.listdir(tmp_path)) == ["photos", "s.yaml"]


# --- class 12: interrupted writes into a new --out ---------------------------------------------


def start_paused(out: Path, flag: Path, *extra: str) -> subprocess.Popen:
    """A `superpose build` that pauses with every temporary file written, before any rename."""
    proc = subprocess.Popen(
        [*CLI, "build", *SMALL, "--out", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, PAUSE: str(flag)},
    )
    deadline = time.monotonic() + 60
    while not (flag.exists() and flag.read_text().isdigit()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("the writer never paused mid-write")
        time.sleep(0.01)
    return proc


def finish(proc: subprocess.Popen) -> str:
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err.decode()


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_signal_mid_write_leaves_no_directory(tmp_path, sig, code, word):
    parent = tmp_path / "p"
    parent.mkdir()
    proc = start_paused(parent / "new" / "net", tmp_path / "flag")
    proc.send_signal(sig)
    err = finish(proc)
    assert proc.returncode == code, err
    assert err.strip().startswith(f"{word}:") and "\n" not in err.strip(), err
    assert "Traceback" not in err
    assert os.listdir(parent) == []  # neither net, nor new/, nor a hidden temporary


def test_sigkill_mid_write_leaves_only_a_hidden_directory_the_next_write_removes(tmp_path, capsys):
    out = tmp_path / "net"
    proc = start_paused(out, tmp_path / "flag")
    proc.kill()
    proc.wait()
    assert not out.exists()  # never an empty or temporaries-only directory under the name
    hidden = [p for p in tmp_path.iterdir() if p.name.startswith(f".net.{proc.pid}.")]
    assert len(hidden) == 1 and hidden[0].is_dir(), os.listdir(tmp_path)
    assert run(capsys, "build", *SMALL, "--out", out)[0] == 0
    assert load_network(out).counts()["neurons"] == 240
    assert sorted(os.listdir(tmp_path)) == ["flag", "net"]


def test_stale_temporary_directories_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".out.999999999.abc123.tmp"
    dead.mkdir()
    (dead / META_FILE).write_text("{}")
    live = tmp_path / ".out.1.abc123.tmp"  # pid 1 always runs
    live.mkdir()
    assert remove_stale_temporaries(tmp_path / "out") == [dead]
    assert not dead.exists() and live.is_dir()


# --- class 13: two writers of one directory ----------------------------------------------------


def test_second_writer_is_refused_while_the_first_writes(tmp_path, capsys):
    out = tmp_path / "net"
    assert run(capsys, "build", *SMALL, "--out", out)[0] == 0
    flag = tmp_path / "flag"
    first = start_paused(out, flag, "--seed", "1")
    code, _, err = run(capsys, "build", *SMALL, "--out", out, "--seed", "2")
    assert_one_line_error(code, err, f"{out} is being written by another process", str(first.pid))
    flag.unlink()  # let the first writer finish
    err = finish(first)
    assert first.returncode == 0, err
    files = network_files(out)
    meta = json.loads(files[META_FILE])
    assert meta["seed"] == 1  # the first writer's JSON and weights, never a mix
    assert meta["checksum"]["sha256"] == hashlib.sha256(files[WEIGHTS_FILE]).hexdigest()
    # the library call is refused the same way while another writer holds the lock
    from superpose._atomic import write_lock

    net = build(Task.from_gates(2, 2, [("and", [0, 1])]), "naive")
    with write_lock(out):
        with pytest.raises(SuperposeError, match="is being written by another process"):
            save_network(net, out)
    assert load_network(out).seed == 1
    assert sorted(os.listdir(tmp_path)) == ["net"]


def test_a_killed_writers_probe_file_is_removed_by_the_next_check(tmp_path):
    """The pre-flight probe of a process killed between creating and removing it is named
    like a writer's temporary, so the next check of that directory removes it (a live
    process's probe is left alone)."""
    from superpose._atomic import check_output

    out = tmp_path / "net"
    out.mkdir()
    dead = out / ".superpose-probe.999999999.x1.tmp"
    live = out / f".superpose-probe.{os.getppid()}.x2.tmp"
    dead.write_text("")
    live.write_text("")
    check_output(out)
    assert not dead.exists() and live.exists()
