"""Local launcher: one multi-threaded run at a time vs several single-threaded runs at once.

What is measured: the wall time of training and evaluating the same table runs (by default
Table 1's local Fashion-MNIST translation row, seed 0: its 4 methods) through
``ssl_geom.reproduce.sweep.launch_local``, once with one worker (it inherits this process's
threads: all cores) and once with ``--workers`` workers (``cores // workers`` threads each),
each into its own empty results folder, so every run trains in both. A run is more than its
network's steps: a fresh interpreter's imports, building the CLI, data loading and the linear
evaluation's many tiny steps are mostly single-threaded, and parallel runs overlap them.

Why a ratio: both configurations run in this process one after the other, so the machine's
load affects both; ``--rounds 2`` repeats them in reverse order. The script also prints how
far the two configurations' results lie apart (online probe and linear-evaluation accuracy,
largest difference over the runs): another thread count sums in another order, so they agree
to rounding, not bit for bit. Runs with the same thread count reproduce exactly.

Command (2-core CPU, about 5 minutes):

    python benchmarks/parallel_runs.py --workers 2

Measured on the 2-core development machine, twice: 1 worker 173.5 s and 178.1 s, 2 workers
121.4 s and 114.4 s (speed-up 1.43x and 1.56x); results apart by at most 0.58 points
(online probe) and 0.24 points (linear evaluation).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ssl_geom.reproduce.records import LINEAR_METRIC, load_records
from ssl_geom.reproduce.sweep import launch_local, plan


def _timed(specs: list, workers: int, out: Path) -> float:
    start = time.perf_counter()
    outcomes = launch_local(specs, out, workers)
    if set(outcomes.values()) != {"finished"}:
        raise RuntimeError(f"not every run finished: {outcomes}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="table1")
    parser.add_argument("--row", default="mnist_translation", help="row key of the table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    specs = [s for s in plan(args.table, "local") if s.row.key == args.row and s.seed in args.seeds]
    if not specs:
        raise SystemExit(f"no local runs of {args.table} on row {args.row!r}, seeds {args.seeds}")
    times: dict[int, list[float]] = {1: [], args.workers: []}
    records: dict[int, dict[str, tuple[float, float]]] = {}
    for round_ in range(args.rounds):
        order = [1, args.workers] if round_ % 2 == 0 else [args.workers, 1]
        for workers in order:
            with tempfile.TemporaryDirectory() as folder:
                times[workers].append(_timed(specs, workers, Path(folder)))
                records[workers] = {
                    r.run_id: (
                        r.accuracy,
                        100 * r.settings["linear_eval"]["metrics"][LINEAR_METRIC],
                    )
                    for r in load_records(Path(folder) / "records")
                }
            print(f"round {round_}: {workers} worker(s): {times[workers][-1]:.1f} s", flush=True)
    apart = [
        max(abs(records[1][run_id][i] - records[args.workers][run_id][i]) for run_id in records[1])
        for i in (0, 1)
    ]
    ratio = sum(times[1]) / sum(times[args.workers])
    print(
        f"{len(specs)} runs ({args.table} {args.row}, seeds {args.seeds}): 1 worker "
        f"{sum(times[1]) / args.rounds:.1f} s, {args.workers} workers "
        f"{sum(times[args.workers]) / args.rounds:.1f} s; speed-up {ratio:.2f}x; results "
        f"apart by at most {apart[0]:.2f} (online probe) and {apart[1]:.2f} (linear evaluation)"
        " points"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"times_s": times, "speedup": ratio, "points_apart": apart})
        )


if __name__ == "__main__":
    main()
