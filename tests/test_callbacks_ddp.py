"""Two-process CPU DDP: every geometry callback logs what a single process logs.

Training with lr = 0 and BatchNorm momentum 0 leaves the weights and running statistics at
their (seeded, identical) initial values on both ranks, so the only difference between the
runs is that each process embeds half of the reference set and the rows are gathered; the
values must agree to float rounding (chunks of different sizes through the same layers).
"""

from __future__ import annotations

import os

import pytest

from tests.callbacks_support import FakeDataModule, MemoryLogger, TinySSL, trainer
from tests.ddp_utils import run_distributed
from tests.test_callbacks import all_callbacks, expected_names


def _logged(devices: int) -> tuple[int, dict[str, float]]:
    """(world size the Trainer ran with, last logged value of every metric)."""
    model = TinySSL(lr=0.0)
    model.backbone[1].momentum = 0.0
    logger = MemoryLogger()
    options = {"devices": devices, "strategy": "ddp"} if devices > 1 else {}
    fitted = trainer(all_callbacks(), logger, **options)
    fitted.fit(model, datamodule=FakeDataModule())
    values = {name: logger.last(name) for name in expected_names()} if logger.rows else {}
    return fitted.world_size, values


def _ddp_entry(rank: int, world_size: int) -> tuple[int, dict[str, float]]:
    # run_distributed started the gloo group; Lightning joins it instead of launching.
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world_size))
    return _logged(world_size)


@pytest.mark.ddp
def test_two_process_ddp_logs_the_single_process_values() -> None:
    (size0, rank0), (size1, rank1) = run_distributed(_ddp_entry, 2)
    assert size0 == size1 == 2
    assert rank1 == {}  # loggers write on rank 0 only
    size, single = _logged(1)
    assert size == 1 and sorted(single) == sorted(expected_names())
    assert rank0 == pytest.approx(single, rel=1e-5, abs=1e-6)
