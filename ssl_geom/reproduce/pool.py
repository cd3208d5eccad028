"""Worker processes that train one run after another, so each pays its imports once.

A fresh interpreter spends seconds importing torch, Lightning and ssl_geom before a run
starts (``benchmarks/run_fixed_cost.py`` measures it; docs/reproduce.md has the figures); a
table of 36-96 runs paid that once per run. A served worker (``python -m
ssl_geom.reproduce.worker --serve OUT_DIR REPLY_FD``) reads one request per line on its
stdin, trains that run in-process exactly as a one-run worker does
(``runner.run_or_record_failure``: every run seeds itself, so its numbers do not depend on
the runs before it; ``tests/test_reproduce_pool.py`` checks them to the bit), and answers the
run's exit code on the pipe ``REPLY_FD``. Its stdout and stderr go to the run's log while it
runs.

:meth:`WorkerPool.start` returns a handle whose ``poll()`` gives the run's exit code, as a
one-run worker's ``Popen`` does, so the local launcher's loop is the same as before. Several
workers share the machine's GPUs: worker ``i`` sees ``CUDA_VISIBLE_DEVICES`` = the ``i``-th
visible device, round robin, so on one GPU every worker trains on it side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .plan import RunSpec
from .process import spawn_worker


@dataclass
class ServedWorker:
    """One served worker process, its reply pipe and whether it is training a run now."""

    process: subprocess.Popen
    replies: int  # read end of the reply pipe (non-blocking)
    buffer: bytes = b""
    busy: bool = False


@dataclass
class RunHandle:
    """A run given to a served worker: ``poll()`` is its exit code once it has finished,
    ``None`` before; a worker that died mid-run gives its own exit code (a failure)."""

    worker: ServedWorker
    code: int | None = None

    def poll(self) -> int | None:
        if self.code is not None:
            return self.code
        exited = self.worker.process.poll() is not None  # before reading: a last reply counts
        with contextlib.suppress(BlockingIOError):
            self.worker.buffer += os.read(self.worker.replies, 4096)
        if b"\n" in self.worker.buffer:
            line, self.worker.buffer = self.worker.buffer.split(b"\n", 1)
            self.code = int(line)
        elif exited:
            self.code = self.worker.process.returncode or 1
        if self.code is not None:
            self.worker.busy = False
        return self.code


@dataclass
class WorkerPool:
    """Served workers for one launch: started on demand, at most one run each at a time.

    ``threads`` caps each worker's intra-op threads (through ``OMP_NUM_THREADS``; not when the
    environment sets ``OMP_NUM_THREADS``); ``devices`` are the GPU ids handed out round robin
    (empty: the environment's devices are left alone).
    """

    out_dir: Path
    threads: int | None = None
    devices: tuple[str, ...] = ()
    workers: list[ServedWorker] = field(default_factory=list)

    def start(self, spec: RunSpec, log: Path | None = None) -> RunHandle:
        """Give ``spec`` to an idle worker (starting one if none is idle); its handle."""
        worker = next((w for w in self.workers if not w.busy and w.process.poll() is None), None)
        if worker is None:
            worker = self._spawn(len(self.workers))
            self.workers.append(worker)
        request = {"spec": spec.to_dict(), "log": str(log) if log is not None else None}
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        assert worker.process.stdin is not None  # started with stdin=PIPE
        worker.process.stdin.write(json.dumps(request).encode() + b"\n")
        worker.process.stdin.flush()
        worker.busy = True
        return RunHandle(worker)

    def _spawn(self, index: int) -> ServedWorker:
        env = dict(os.environ)
        if self.threads is not None and "OMP_NUM_THREADS" not in os.environ:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = self.devices[index % len(self.devices)]
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        command = [
            sys.executable,
            "-m",
            "ssl_geom.reproduce.worker",
            "--serve",
            str(self.out_dir),
            str(write_end),
        ]
        try:
            process = spawn_worker(command, env=env, stdin=subprocess.PIPE, pass_fds=(write_end,))
        finally:
            os.close(write_end)  # the child holds its own copy
        return ServedWorker(process, read_end)

    def close(self) -> None:
        """End every worker: an idle one when its stdin closes, one still training (the
        launch was interrupted) or hanging is killed; its run lock dies with it."""
        for worker in self.workers:
            if worker.busy:
                worker.process.kill()
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        for worker in self.workers:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            os.close(worker.replies)
        self.workers.clear()


def visible_devices() -> tuple[str, ...]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else every CUDA
    device torch counts (none on a CPU machine); counting does not start CUDA here."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(d.strip() for d in listed.split(",") if d.strip())
    import torch

    return tuple(str(i) for i in range(torch.cuda.device_count()))
