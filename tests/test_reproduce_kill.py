"""A sweep survives SIGKILL at any moment: the final records and table equal an uninterrupted run's.

The table: SimCLR on a 64-image fake Fashion-MNIST, two seeds trained at once (two workers of
one thread each), each evaluated linearly (the CARE table's "headline" mode) by a short
protocol. It is swept once without interruption
(the reference), and once killed (``SIGKILL`` to the sweep's whole process group, workers
included) again and again and resumed each time:

- at pause points, so that the kill lands in a given phase: mid-training (a training step of
  the second epoch, after the first epoch's checkpoint), mid linear evaluation (one of its
  training steps) and while a record is being written (its temporary file written, before it
  is linked to its name). ``sitecustomize.py`` below, put on ``PYTHONPATH``, installs the
  pause in every Python process of the sweep (parent and workers): the first process to
  reach the point claims it, writes a marker and sleeps until killed. No product code knows
  about the test;
- at random moments, drawn from the reference sweep's wall time (the seed is printed); the
  steps of the pause points are drawn too.

Both sweeps run with one thread, so they sum in the same order. Records must be byte-equal as
JSON once the fields that honestly differ are removed: ``wall_time_s`` and
``settings.linear_eval.wall_time_s`` (time measurements) and ``settings.resumed_from`` (the
checkpoint an interrupted run resumed from: ``None`` in the reference). The tables must be
equal, no temporary file (``*.tmp``) may be left, no failure recorded, and every run lock free.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.reproduce.process import run_lock
from ssl_geom.reproduce.schema import Profile, TableSpec
from tests.reproduce_testing import simclr_table, tiny_simclr

REPO = Path(__file__).resolve().parents[1]
PAUSE = "SSL_GEOM_KILL_TEST_PAUSE"


# A short protocol of the same shape as experiments/linear_fashion.yaml.
_LINEAR = """
seed_everything: 0
trainer:
  max_epochs: 12
  accelerator: cpu
  devices: 1
  precision: 32-true
  check_val_every_n_epoch: 4
model:
  class_path: ssl_geom.evaluation.LinearEval
  init_args:
    n_classifiers: 3
    optimizer: adam
    lr: 1.0e-3
    weight_decay: 1.0e-6
    readout: global_pool
    standardize: true
data:
  class_path: ssl_geom.evaluation.LinearEvalData
  init_args:
    augment: false
    cache_features: true
    dataset:
      class_path: ssl_geom.data.MNISTDataModule
      init_args:
        variant: fashion
        batch_size: 16
        num_workers: 0
        train_views: none
"""

# Installed in every Python process of the sweep through PYTHONPATH; inert without PAUSE.
_SITECUSTOMIZE = f'''
import os

_SPEC = os.environ.get("{PAUSE}")


def _claim(marker):
    """Whether this process is the first to reach the pause point (the kill's target)."""
    try:
        os.close(os.open(marker + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _pause(marker):
    import time

    with open(marker, "w") as handle:
        handle.write(str(os.getpid()))
    while True:  # until the test kills the process group
        time.sleep(1)


if _SPEC:
    _phase, _marker, _at = _SPEC.split("|")
    _at = int(_at)
    if _phase == "record":
        _link = os.link

        def _paused_link(src, dst, *args, **kwargs):
            if "/records/" in str(dst) and _claim(_marker):
                _pause(_marker)
            return _link(src, dst, *args, **kwargs)

        os.link = _paused_link
    elif _phase == "train":
        from ssl_geom.methods.base import SSLMethod

        _step = SSLMethod.training_step

        def _paused_step(self, batch, batch_idx):
            if self.current_epoch == 1 and batch_idx == _at and _claim(_marker):
                _pause(_marker)
            return _step(self, batch, batch_idx)

        SSLMethod.training_step = _paused_step
    elif _phase == "linear":
        from ssl_geom.evaluation.linear import LinearEval

        _linear_step = LinearEval.training_step

        def _paused_linear_step(self, batch, batch_idx):
            if self.global_step == _at and _claim(_marker):
                _pause(_marker)
            return _linear_step(self, batch, batch_idx)

        LinearEval.training_step = _paused_linear_step
'''

# The sweep process: registers the table (built from the same folder) and runs the CLI.
_DRIVER = """
import sys
from pathlib import Path
from ssl_geom.reproduce.__main__ import main
from ssl_geom.reproduce.tables import TABLES
from tests.test_reproduce_kill import kill_table

TABLES["kill"] = kill_table(Path(sys.argv[1]))
main(["kill", "--out", sys.argv[2]])
"""

# Fields that differ between an interrupted and an uninterrupted run, and why: time
# measurements, and the checkpoint a resumed run continued from.
_EXCLUDED = (("wall_time_s",), ("settings", "linear_eval", "wall_time_s"))
_RESUMED = ("settings", "resumed_from")


def kill_table(folder: Path) -> TableSpec:
    """The tiny table of this test; its configs and data are under ``folder``."""
    experiments = folder / "experiments"
    local = Profile("local", seeds=(0, 1), overrides=(), description="tiny", parallel_runs=2)
    return simclr_table(
        experiments,
        name="kill",
        title="kill test",
        profiles={"local": local},
        linear_eval="headline",
    )


def _write_table_files(folder: Path) -> None:
    root = write_fake_dataset("fashion", folder / "data", n_train=64, n_test=32)
    experiments = folder / "experiments"
    experiments.mkdir()
    (experiments / "simclr_tiny.yaml").write_text(tiny_simclr(root, max_epochs=3))
    (experiments / "linear_fashion.yaml").write_text(_LINEAR)


def _env(hooks: Path, pause: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PAUSE}
    env.update(
        PYTHONPATH=os.pathsep.join([str(hooks), str(REPO)]),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    if pause is not None:
        env[PAUSE] = pause
    return env


def _start(folder: Path, out: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The sweep in its own process group (its workers join it), output appended to ``log``."""
    with log.open("ab") as stream:
        return subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(folder), str(out)],
            cwd=REPO,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _kill_group(sweep: subprocess.Popen) -> None:
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the workers die with the group too
        try:
            os.killpg(sweep.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {sweep.pid} outlived SIGKILL")


def _normalised(record: dict[str, Any]) -> str:
    for path in (*_EXCLUDED, _RESUMED):
        node = record
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1])
    return json.dumps(record, indent=2, sort_keys=True)


@pytest.mark.slow
def test_a_sweep_killed_at_any_moment_ends_with_the_records_and_table_of_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    _write_table_files(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "sweeps.log"

    reference = tmp_path / "reference"
    start = time.monotonic()
    assert _start(tmp_path, reference, _env(hooks), log).wait(timeout=600) == 0, log.read_text()
    wall = time.monotonic() - start

    seed = random.randrange(2**32)
    draw = random.Random(seed)
    # A kill at a random time lands only while the sweep still runs: each comes after a pause
    # kill, which leaves at least a restart, the rest of a run and its evaluation to do, and
    # is drawn from the first fifth of the reference sweep's time.
    plan: list[tuple[str, Any]] = [
        ("train", draw.randrange(2)),  # a step of epoch 1 (2 steps an epoch)
        ("time", draw.uniform(0.02, 0.2) * wall),
        ("linear", draw.randrange(1, 48)),  # a step of the linear evaluation (48 in all)
        ("record", 0),
        ("time", draw.uniform(0.02, 0.2) * wall),
    ]
    print(f"kill plan (seed {seed}, reference sweep {wall:.0f} s): {plan}")
    out = tmp_path / "killed"
    for i, (phase, at) in enumerate(plan):
        if phase == "time":
            sweep = _start(tmp_path, out, _env(hooks), log)
            time.sleep(at)
            assert sweep.poll() is None, f"the sweep finished before the kill at {at:.1f} s"
        else:
            marker = tmp_path / f"paused_{i}_{phase}"
            sweep = _start(tmp_path, out, _env(hooks, f"{phase}|{marker}|{at}"), log)
            deadline = time.monotonic() + 300
            while not marker.exists():
                assert sweep.poll() is None, f"the sweep ended before pausing at {phase}"
                assert time.monotonic() < deadline, f"no pause at {phase} within 300 s"
                time.sleep(0.2)
        _kill_group(sweep)
    assert _start(tmp_path, out, _env(hooks), log).wait(timeout=600) == 0, log.read_text()

    names = sorted(p.name for p in (reference / "records").iterdir())
    assert sorted(p.name for p in (out / "records").iterdir()) == names and len(names) == 2
    for name in names:
        expected = json.loads((reference / "records" / name).read_text())
        assert expected["settings"]["resumed_from"] is None
        got = json.loads((out / "records" / name).read_text())
        assert _normalised(got) == _normalised(expected), name
    assert (out / "kill.md").read_text() == (reference / "kill.md").read_text()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / "failures").exists()
    for lock in (out / "runs").glob("*.lock"):
        with run_lock(lock):  # free: raises RunBusy if a killed process still held it
            pass
