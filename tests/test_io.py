"""ssl_geom.io.write_atomic: whole file or nothing, and no overwrite unless asked."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_geom import io as ssl_io
from ssl_geom.io import remove_stale_temporaries, write_atomic


def test_writes_text_and_bytes_creating_parents(tmp_path: Path) -> None:
    text = write_atomic(tmp_path / "a" / "b" / "t.md", "héllo\n")
    raw = write_atomic(tmp_path / "r.bin", b"\x00\xff")
    assert text.read_bytes() == "héllo\n".encode()
    assert raw.read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "r.bin"]


def test_mode_follows_the_umask_like_open(tmp_path: Path) -> None:
    # The reference is what a plain open() creates in the same directory under the same umask.
    path = write_atomic(tmp_path / "x.json", "{}")
    (tmp_path / "plain").write_text("{}")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_refuses_an_existing_file_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("mine")
    with pytest.raises(FileExistsError, match=r"record\.json already exists.*delete or move it"):
        write_atomic(path, "theirs")
    assert path.read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left


def test_overwrite_true_replaces(tmp_path: Path) -> None:
    path = tmp_path / "table.md"
    path.write_text("old")
    write_atomic(path, "new", overwrite=True)
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_overwrite_keeps_the_replaced_files_permissions(tmp_path: Path) -> None:
    # Two modes that differ from what a new file gets under this umask (the plain open()
    # reference), so keeping them cannot be an accident of the umask.
    (tmp_path / "plain").write_text("")
    fresh = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    for mode in (m for m in (0o600, 0o640, 0o604) if m != fresh):
        path = tmp_path / f"notebook_{mode:o}.ipynb"
        path.write_text("old")
        path.chmod(mode)
        write_atomic(path, "new", overwrite=True)
        assert path.read_text() == "new"
        assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_crash_mid_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    # Fail after part of the data is written but before it is flushed: the moment a killed
    # job would leave half a file behind a plain open(path, "w").
    def crash(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ssl_io.os, "fsync", crash)
    new = tmp_path / "new.json"
    kept = tmp_path / "kept.md"
    kept.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        write_atomic(new, "x" * 100_000, overwrite=overwrite)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(kept, "y" * 100_000, overwrite=overwrite)
    assert not new.exists()
    assert kept.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.md"]


def test_temporaries_of_killed_writers_are_removed_and_live_or_foreign_ones_kept(
    tmp_path: Path,
) -> None:
    """A SIGKILL between the two steps of write_atomic leaves its temporary file (found by the
    kill test of tests/test_reproduce_kill.py). Simulated by a child process that writes one
    and is killed; its file goes, a file this (live) process is writing stays, and so do a
    file of another host and a file that is no temporary of write_atomic."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time; from ssl_geom import io\n"
            "os.link = lambda *a, **k: (print('written', flush=True), time.sleep(60))\n"
            "io.write_atomic(sys.argv[1], 'half')",
            str(tmp_path / "runs" / "r1" / "record.json"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert child.stdout.readline() == "written\n"
    child.kill()
    child.wait()
    (stale,) = (tmp_path / "runs" / "r1").glob(".record.json.*.tmp")
    live = tmp_path / f".table.md.{ssl_io._HOST}.{os.getpid()}.0123456789ab.tmp"
    foreign = tmp_path / f".table.md.otherhost.{child.pid}.0123456789ab.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (live, foreign, other):
        path.write_text("")

    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists() and other.exists()
