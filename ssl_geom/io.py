"""Write a whole file or nothing: the one helper behind every file ssl_geom writes itself.

Run records, failure records, report tables and plots, settings stamps and the fake
datasets must survive a job killed at any moment (cluster preemption, Ctrl-C) without
leaving half a file that a later reader would take for a whole one. The bytes go to a
hidden temporary file in the target's directory first (same file system, so the last
step is atomic); only then does the target appear:

- ``overwrite=False`` hard-links the temporary file to ``path``. Unlike a rename, the
  link fails if ``path`` exists — also when another process created it in the meantime —
  so a file a user (or a parallel job) has is never replaced.
- ``overwrite=True`` renames it over ``path`` (``os.replace``): a reader sees the old
  file or the new one, never a mix. The new file keeps the permission bits of the one it
  replaces, as ``open(path, "w")`` would. Only for files derived from others (tables,
  plots, executed notebooks).

Hand-written because the standard library has no atomic create-or-fail write and the
usual packages (``atomicwrites``) are unmaintained; ``tempfile.mkstemp`` is not used
because it creates the file with mode 0600, which would make results private to the
user who ran the sweep — ``os.open(..., 0o666)`` honours the umask like ``open`` does.

A writer killed between the two steps (``SIGKILL`` runs no cleanup) leaves its temporary
file behind. Its name says which host and process wrote it
(``.<name>.<host>.<pid>.<random>.tmp``), so :func:`remove_stale_temporaries` can delete
exactly those whose writer is gone, while another process's write is in flight in the same
folder (a parallel sweep, or a job on another host sharing the folder, which is left alone).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import stat
from pathlib import Path

# The writing host in temporary names: no dots, so that the name parses from the right.
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
_TEMPORARY = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{12}\.tmp$")


def write_atomic(path: str | Path, data: str | bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` completely or not at all; return ``path``.

    Creates missing parent directories. With ``overwrite=False`` (the default) an
    existing ``path`` raises ``FileExistsError`` and is left untouched; with
    ``overwrite=True`` it is replaced and its permission bits carry over. The data is
    flushed to disk (``fsync``) before ``path`` appears, so a machine crash cannot leave
    an empty file behind a name either.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            _copy_mode(path, tmp)
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(
                f"{path} already exists; refusing to overwrite it "
                "(delete or move it first to write it again)"
            ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _copy_mode(source: Path, target: Path) -> None:
    """Give ``target`` the permission bits of ``source``, if ``source`` exists."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        return
    os.chmod(target, stat.S_IMODE(mode))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files of :func:`write_atomic` under ``folder`` whose writer died.

    Only files this host wrote are considered (a process of another host cannot be
    checked), and only those whose process no longer runs. Returns the deleted paths.
    """
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match is None or match["host"] != _HOST or _running(int(match["pid"])):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
