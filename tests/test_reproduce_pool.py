"""The local launcher's served workers (ssl_geom/reproduce/pool.py).

With a fake workload in place of training (the real serve loop, log redirection and reply
pipe; only the run itself replaced): runs overlap up to ``workers``, each worker gets its
share of the cores and a device round robin (all the same one on one GPU), a worker trains
several runs in one process, and a worker that dies mid-run fails only its run. With real
training: a run trained second in a served worker has the same numbers, to the bit, as the
same run in a fresh process.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssl_geom.reproduce import pool as pool_module
from ssl_geom.reproduce import sweep as sweep_module
from ssl_geom.reproduce.plan import plan_runs
from ssl_geom.reproduce.pool import WorkerPool
from ssl_geom.reproduce.records import load_records
from ssl_geom.reproduce.schema import TableSpec
from ssl_geom.reproduce.tables import TABLES
from tests.test_reproduce_sweep import _tiny_table

# The real serve loop with a fake run: sleeps, prints a line (to the run's log), writes what
# it saw (time, process, threads, device) and exits 1 for seed 2; seed 3 kills its worker.
_FAKE_WORKER = """
import json, os, sys, time
from pathlib import Path
import ssl_geom.reproduce.worker as worker

def fake_run(spec, out_dir):
    start = time.time()
    if spec.seed == 3:
        os._exit(9)
    time.sleep({seconds})
    print('fake training', flush=True)
    seen = {{'start': start, 'end': time.time(), 'pid': os.getpid(),
             'threads': os.environ.get('OMP_NUM_THREADS'),
             'device': os.environ.get('CUDA_VISIBLE_DEVICES')}}
    Path({reports!r}, str(spec.seed)).write_text(json.dumps(seen))
    return 1 if spec.seed == 2 else 0

worker.exit_code = fake_run
worker.main()
"""


@pytest.fixture
def fake_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Served workers run :data:`_FAKE_WORKER` (1.5 s a run); the folder of their reports."""
    reports = tmp_path / "reports"
    reports.mkdir()
    script = _FAKE_WORKER.format(seconds=1.5, reports=str(reports))
    spawn = pool_module.spawn_worker

    def fake_spawn(command: list[str], **kwargs):
        assert command[1:4] == ["-m", "ssl_geom.reproduce.worker", "--serve"]
        return spawn([sys.executable, "-c", script, *command[3:]], **kwargs)

    monkeypatch.setattr(pool_module, "spawn_worker", fake_spawn)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return reports


def _seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: tuple[int, ...]) -> TableSpec:
    table = _tiny_table(tmp_path)
    profile = dataclasses.replace(table.profiles["local"], seeds=seeds)
    table = dataclasses.replace(table, profiles={"local": profile})
    monkeypatch.setitem(TABLES, "tiny", table)
    return table


def _present(table: TableSpec) -> list:
    """The planned runs of the tiny table's row whose data exists, in table order."""
    return [s for s in plan_runs(table, table.profiles["local"]) if s.row.key == "present"]


def _reports(folder: Path) -> dict[int, dict]:
    return {int(p.name): json.loads(p.read_text()) for p in folder.iterdir()}


def test_workers_share_one_gpu_and_the_cores_and_each_trains_several_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_workers: Path
) -> None:
    """Five runs, two workers, a (pretended) 16-core machine with one GPU: both workers see
    GPU 0 and 16 // 2 = 8 threads, two runs overlap, never three, two processes do all five
    runs, each run has its own log and the outcomes follow the exit codes (seed 2 fails)."""
    _seeds(tmp_path, monkeypatch, (0, 1, 2, 4, 5))
    monkeypatch.setattr(sweep_module, "available_cores", lambda: 16)
    monkeypatch.setattr(sweep_module, "visible_devices", lambda: ("0",))
    out = tmp_path / "results"

    result = sweep_module.sweep("tiny", "local", out, workers=2)

    ran = _reports(fake_workers)
    assert sorted(ran) == [0, 1, 2, 4, 5]
    assert {(r["device"], r["threads"]) for r in ran.values()} == {("0", "8")}
    assert len({r["pid"] for r in ran.values()}) == 2  # imports paid twice, not five times
    assert ran[0]["start"] < ran[1]["end"] and ran[1]["start"] < ran[0]["end"]  # overlapped
    for moment in (r["start"] for r in ran.values()):
        assert sum(r["start"] <= moment < r["end"] for r in ran.values()) <= 2
    assert (result.finished, len(result.failed)) == (4, 1)
    logs = sorted((out / "logs").iterdir())
    assert len(logs) == 5 and all(log.read_text() == "fake training\n" for log in logs)


def test_devices_are_handed_out_round_robin_and_a_set_omp_num_threads_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_workers: Path
) -> None:
    """Two GPUs, two workers: one on each; the user's OMP_NUM_THREADS=3 wins over 16 // 2."""
    table = _seeds(tmp_path, monkeypatch, (0, 1))
    monkeypatch.setattr(sweep_module, "available_cores", lambda: 16)
    monkeypatch.setattr(sweep_module, "visible_devices", lambda: ("4", "7"))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")

    sweep_module.launch_local(_present(table), tmp_path / "out", 2)

    ran = _reports(fake_workers)
    assert sorted((r["device"], r["threads"]) for r in ran.values()) == [("4", "3"), ("7", "3")]


def test_a_worker_that_dies_mid_run_fails_that_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_workers: Path
) -> None:
    """Seed 3 kills its worker (exit 9): that run fails; seed 0 after it, on one worker, gets a
    fresh worker and finishes."""
    table = _seeds(tmp_path, monkeypatch, (3, 0))
    monkeypatch.setattr(sweep_module, "visible_devices", lambda: ())
    specs = _present(table)

    outcomes = sweep_module.launch_local(specs, tmp_path / "out", 1)

    assert [outcomes[spec.run_id] for spec in specs] == ["failed", "finished"]
    assert sorted(_reports(fake_workers)) == [0]


def test_visible_devices_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert pool_module.visible_devices() == ("2", "5")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pool_module.visible_devices() == ()


def test_a_run_trained_second_in_a_served_worker_matches_a_fresh_process_to_the_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 0 alone in a one-run worker, and after seed 1 in one served worker: the same
    accuracy, test metrics and per-epoch history (only the wall time may differ)."""
    table = _seeds(tmp_path, monkeypatch, (1, 0))
    specs = {spec.seed: spec for spec in _present(table)}
    spec = specs[0]
    fresh, served = tmp_path / "fresh", tmp_path / "served"
    command = ["-m", "ssl_geom.reproduce.worker", json.dumps(spec.to_dict()), str(fresh)]
    subprocess.run([sys.executable, *command], check=True, capture_output=True)
    pool = WorkerPool(served)
    try:
        for seed in (1, 0):
            handle = pool.start(specs[seed], served / f"{seed}.log")
            while handle.poll() is None:
                time.sleep(0.2)
            assert handle.code == 0
    finally:
        pool.close()
    (alone,) = load_records(fresh / "records")
    second = next(r for r in load_records(served / "records") if r.seed == 0)
    assert (second.accuracy, second.metrics, second.history) == (
        alone.accuracy,
        alone.metrics,
        alone.history,
    )
    assert second.settings["torch_threads"] == alone.settings["torch_threads"]


def test_the_gpu_profile_trains_four_runs_at_once_whose_loaders_fit_16_cores() -> None:
    """Four runs share the GPU machine's 16 cores: each gets 16 // 4 = 4, its main process and
    3 loader workers, so 4 x (1 + 3) = 16 processes and no more."""
    for name, table in TABLES.items():
        gpu = table.profiles["gpu"]
        loaders = [o for o in gpu.overrides if o.startswith("--data.num_workers=")]
        assert (gpu.parallel_runs, loaders) == (4, ["--data.num_workers=3"]), name
