"""Worker processes that die with the sweep that started them, and one trainer per run.

Killing a sweep (Ctrl-C, a cluster pre-emption, ``kill``) must not leave its worker training
on: the rerun would start a duplicate of the same run. On Linux the child asks the kernel
for ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes: nothing
in the standard library or our dependencies wraps it). The per-run lock is an ``fcntl.flock``
on a lock file, which the kernel releases when the holder dies, so a killed worker never
leaves a stale lock behind. Hand-written because both are a few lines of OS calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class RunBusy(RuntimeError):
    """Another process holds the run's lock (it is training the same run)."""


def _die_with_parent(parent_pid: int) -> None:
    """In the child before exec: the kernel kills it when its parent dies (Linux only).

    Elsewhere nothing is set, and a worker outlives a killed sweep; the run lock still stops
    a second process from training the same run.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)


def spawn_worker(
    command: list[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    stdin: int | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start ``command`` as a child process that dies with this one.

    ``env`` replaces its environment; ``log`` (appended to) receives its stdout and stderr
    instead of this process's; ``stdin`` and ``pass_fds`` are ``subprocess.Popen``'s (a
    served worker's requests and reply pipe: ``pool.py``).
    """
    parent = os.getpid()
    stream = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        stream = log.open("ab")
    try:  # the child keeps its own copy of the log's descriptor
        return subprocess.Popen(
            command,
            env=env,
            stdin=stdin,
            stdout=stream,
            stderr=subprocess.STDOUT if stream is not None else None,
            pass_fds=pass_fds,
            preexec_fn=lambda: _die_with_parent(parent),
        )
    finally:
        if stream is not None:
            stream.close()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``path``; raise :class:`RunBusy` if it is taken."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"another process is training this run (lock {path} is held)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
