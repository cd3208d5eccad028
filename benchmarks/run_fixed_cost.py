"""The fixed cost of one reproduce run, in a fresh process (before) and in a served worker.

What a run pays before its first training step, phase by phase, in a fresh interpreter:
``import`` (torch, Lightning, ssl_geom: what ``python -m ssl_geom.reproduce.worker`` loads),
``cli`` (``LightningCLI`` parses the resolved config and builds model, data and Trainer),
``data`` (the DataModule decodes its dataset: ``prepare_data`` + ``setup("fit")``) and
``linear`` (the linear evaluation's data and Trainer are built; its frozen-feature pass is
compute, not fixed cost, and is left out). Then the same phases again in the same process:
what the next run on a served worker (``ssl_geom/reproduce/pool.py``) pays, its imports
already done.

Before (one process per run): import + cli + data + linear, every run. After (served
workers): cli + data + linear every run, imports once per worker, i.e. import / (runs per
worker) more per run. Both come from the same child processes, so machine load affects both
alike; the median over ``--rounds`` fresh processes is printed.

Command (CPU, about 1 minute): python benchmarks/run_fixed_cost.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PHASES = ("import", "cli", "data", "linear")

_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
start = time.perf_counter()
import lightning
import ssl_geom.reproduce.worker
from ssl_geom.evaluation.data import LinearEvalData
from ssl_geom.reproduce.runner import _build
from ssl_geom.reproduce.plan import RunSpec
times = {'import': time.perf_counter() - start}
spec = RunSpec.from_dict(json.loads(sys.argv[1]))
for suffix in ('', '_again'):
    with tempfile.TemporaryDirectory() as scratch:
        t = time.perf_counter()
        cli = _build(Path(spec.config), Path(scratch), spec.overrides)
        times['cli' + suffix] = time.perf_counter() - t
        t = time.perf_counter()
        cli.datamodule.prepare_data()
        cli.datamodule.setup('fit')
        times['data' + suffix] = time.perf_counter() - t
        t = time.perf_counter()
        LinearEvalData(cli.datamodule, augment=False, cache_features=True, batch_size=512)
        lightning.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, devices=1)
        times['linear' + suffix] = time.perf_counter() - t
print('TIMES ' + json.dumps(times))
"""


def measure(spec_json: str) -> dict[str, float]:
    """One fresh interpreter's phase times (cold, then ``*_again`` warm)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, spec_json], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("TIMES "))
    return json.loads(line[len("TIMES ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="table1")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes measured")
    parser.add_argument(
        "--runs-per-worker", type=int, default=None, help="default: runs / profile's workers"
    )
    args = parser.parse_args()

    from ssl_geom.reproduce.sweep import plan, profile_of

    out = Path("results") / args.table
    specs = plan(args.table, args.profile, out)
    workers = profile_of(args.table, args.profile, out).parallel_runs
    per_worker = args.runs_per_worker or max(1, len(specs) // workers)
    rounds = [measure(json.dumps(specs[0].to_dict())) for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}

    print(f"{args.table}/{args.profile}: {specs[0].run_id}, {args.rounds} fresh processes")
    print(f"{'phase':<8} {'fresh (s)':>10} {'next run (s)':>13}")
    for phase in PHASES:
        again = median.get(f"{phase}_again", 0.0)
        print(f"{phase:<8} {median[phase]:>10.2f} {again:>13.2f}")
    before = sum(median[p] for p in PHASES)
    after = sum(median[f"{p}_again"] for p in PHASES[1:]) + median["import"] / per_worker
    print(
        f"fixed cost per run: before {before:.2f} s (one process per run), after {after:.2f} s "
        f"(served workers, {len(specs)} runs on {workers} workers = {per_worker} runs each); "
        f"after/before = {after / before:.3f}"
    )


if __name__ == "__main__":
    main()
