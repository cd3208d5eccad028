"""Two-process CPU DDP: every geometry callback logs what a single process logs.

Training with lr = 0 and BatchNorm momentum 0 leaves the weights and running statistics at
their (seeded, identical) initial values on both ranks, so the only difference between the
runs is that each process embeds half of the reference set and the rows are gathered; the
values must agree to float rounding (chunks of different sizes through the same layers).

Two setups: a user's lightly-style module with a user's DataModule, and an ssl_geom method
(SimCLR on a structured backbone) with an ssl_geom DataModule, whose same-parameters
augmentation is the DataModule's own (``Augmentation.same_params``); the per-rank random draws
of training (``ssl_geom.rank_draws``) must not reach the callbacks' draws, which every rank
makes alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ssl_geom.data import CIFAR100DataModule
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.methods import SimCLR
from tests.callbacks_support import FakeDataModule, MemoryLogger, TinySSL, trainer
from tests.ddp_utils import run_distributed
from tests.methods_testing import TinyCNN
from tests.test_callbacks import all_callbacks, expected_names

assert TinyCNN  # importing it registers the backbone 'tiny_cnn'


def _setup(kind: str, root: str) -> tuple[L.LightningModule, L.LightningDataModule]:
    """A model that trains nothing (lr 0, BatchNorm momentum 0) and its data."""
    if kind == "user":
        model = TinySSL(lr=0.0)
        model.backbone[1].momentum = 0.0
        return model, FakeDataModule()
    torch.manual_seed(0)  # the same initial weights in every process
    model = SimCLR(
        backbone="tiny_cnn",
        in_channels=3,
        optimizer="sgd",
        lr=0.0,
        weight_decay=0.0,
        lr_schedule="constant",
        projector_hidden_dims=[],  # the geometry paper's linear projector (FVU, Eq. 10)
        projector_bias=False,
    )
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.momentum = 0.0
    data = CIFAR100DataModule(root=root, batch_size=16, num_workers=0, seed=0)
    return model, data


def _logged(devices: int, kind: str, root: str) -> tuple[int, dict[str, float]]:
    """(world size the Trainer ran with, last logged value of every metric)."""
    model, data = _setup(kind, root)
    logger = MemoryLogger()
    options = {"devices": devices, "strategy": "ddp"} if devices > 1 else {}
    fitted = trainer(all_callbacks(), logger, **options)
    fitted.fit(model, datamodule=data)
    values = {name: logger.last(name) for name in expected_names()} if logger.rows else {}
    return fitted.world_size, values


def _ddp_entry(rank: int, world_size: int, kind: str, root: str) -> tuple[int, dict[str, float]]:
    # run_distributed started the gloo group; Lightning joins it instead of launching.
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world_size))
    return _logged(world_size, kind, root)


@pytest.mark.ddp
@pytest.mark.parametrize("kind", ["user", pytest.param("ssl_geom", marks=pytest.mark.slow)])
def test_two_process_ddp_logs_the_single_process_values(kind: str, tmp_path: Path) -> None:
    root = str(write_fake_dataset("cifar100", tmp_path, n_train=96, n_test=64))
    (size0, rank0), (size1, rank1) = run_distributed(_ddp_entry, 2, kind, root)
    assert size0 == size1 == 2
    assert rank1 == {}  # loggers write on rank 0 only
    size, single = _logged(1, kind, root)
    assert size == 1 and sorted(single) == sorted(expected_names())
    assert rank0 == pytest.approx(single, rel=1e-5, abs=1e-6)
