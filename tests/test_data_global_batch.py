"""``data.batch_size`` is the global batch: each of ``world_size`` processes loads its share.

The 2-process test runs a real ``Trainer(strategy="ddp")`` on gloo (``tests/ddp_utils``) over
MNIST-format fixture files, with ``include_original=True`` so that each rank's step-0 batch
can be identified by its un-augmented images.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from ssl_geom.data import MNISTDataModule
from ssl_geom.data.fake import write_fake_dataset
from tests.conftest import quiet_trainer
from tests.ddp_utils import run_distributed


class _RecordFirstBatch(L.LightningModule):
    """A one-layer model that keeps the un-augmented images of its first training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(28 * 28, 1)
        self.first: torch.Tensor | None = None

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        views, _ = batch
        if self.first is None:
            self.first = views[-1].clone()
        return self.layer(views[0].flatten(1)).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit_one_step(rank: int, world_size: int, root: str) -> dict:
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world_size))
    dm = MNISTDataModule(root=root, batch_size=8, num_workers=0, include_original=True)
    model = _RecordFirstBatch()
    trainer = quiet_trainer(devices=world_size, strategy="ddp", max_steps=1)
    trainer.fit(model, dm)
    return {
        "global": dm.global_batch_size,
        "per_process": dm.per_process_batch_size,
        "first": model.first,
    }


@pytest.mark.ddp
@pytest.mark.slow  # spawns 2 processes that import torch + Lightning: ~50 s here
def test_two_processes_each_load_half_of_the_global_batch(tmp_path: Path) -> None:
    root = write_fake_dataset("mnist", tmp_path, n_train=32, n_test=8)
    ranks = run_distributed(_fit_one_step, 2, str(root))
    assert [(r["global"], r["per_process"]) for r in ranks] == [(8, 4), (8, 4)]
    first = torch.cat([r["first"] for r in ranks])
    assert first.shape == (8, 1, 28, 28)  # one step saw 8 samples in total
    # ... 8 different ones: the ranks drew disjoint halves (DistributedSampler).
    assert len({tuple(x.flatten().tolist()) for x in first}) == 8


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(
    tmp_path: Path,
) -> None:
    root = write_fake_dataset("mnist", tmp_path, n_train=16, n_test=8)
    dm = MNISTDataModule(root=str(root), batch_size=6, num_workers=0)
    assert dm.split_batch(3) == 2 and dm.per_process_batch_size == 2
    dm.trainer = SimpleNamespace(world_size=4)  # what setup() reads from an attached Trainer
    with pytest.raises(ValueError, match=r"batch_size=6 is the global batch .* over the 4 proc"):
        dm.setup("fit")
    dm.trainer = SimpleNamespace(world_size=2)
    dm.setup("fit")
    assert next(iter(dm.val_dataloader()))[0].shape[0] == 3  # eval loaders split too
