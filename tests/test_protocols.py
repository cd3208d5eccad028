"""What methods and callbacks read from ``trainer.datamodule`` (``ssl_geom.protocols``).

Each protocol is satisfied by having the attribute, so a user's DataModule needs no ssl_geom
base class, and one that lacks an attribute is told apart from one that has it.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ssl_geom import protocols
from ssl_geom.data import MNISTDataModule
from ssl_geom.protocols import attached_datamodule

# Every protocol of the module, so one added there is checked here too.
ALL = tuple(value for name, value in vars(protocols).items() if name.startswith("Provides"))


class OnlyTransform(L.LightningDataModule):
    """A user's DataModule offering just the batched transform."""

    def same_params_transform(self) -> torch.nn.Module:
        return torch.nn.Identity()


def test_ssl_geom_datamodule_provides_everything(tmp_path: Path) -> None:
    dm = MNISTDataModule(root=str(tmp_path), num_workers=0)
    assert [p.__name__ for p in ALL if not isinstance(dm, p)] == []


def test_plain_datamodule_provides_nothing() -> None:
    dm = L.LightningDataModule()
    assert [p.__name__ for p in ALL if isinstance(dm, p)] == []


def test_a_user_datamodule_provides_what_it_has() -> None:
    dm = OnlyTransform()
    assert [p.__name__ for p in ALL if isinstance(dm, p)] == ["ProvidesSameParamsTransform"]


def test_attached_datamodule_is_the_one_the_trainer_fits_with() -> None:
    class Recorder(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.seen: L.LightningDataModule | None = None

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            self.seen = attached_datamodule(self.trainer)
            return self.layer(batch[0]).sum()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class Data(L.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)

    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    assert attached_datamodule(trainer) is None  # no fit yet
    assert attached_datamodule(None) is None  # a module outside any Trainer
    data, model = Data(), Recorder()
    trainer.fit(model, datamodule=data)
    assert model.seen is data
