"""Small models, data and a memory logger for the callback tests (no ssl_geom.methods/data).

``FakeDataModule`` offers the optional extras an ``ssl_geom.data`` DataModule has
(``same_params_transform()``, ``train_eval_dataloader()``, ``num_classes``);
``PlainDataModule`` is a user's DataModule with only train and validation loaders.

Kept outside the test modules so the DDP test's spawned processes can import them by name.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from tests.conftest import quiet_trainer

IMAGE = (1, 6, 6)
D_IN = 36


class MemoryLogger(Logger):
    """Keeps every ``log_metrics`` call in a list (rank 0 only, like every Lightning logger)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append(dict(metrics))

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def last(self, name: str) -> float:
        values = [row[name] for row in self.rows if name in row]
        if not values:
            raise KeyError(
                f"{name} was never logged; logged: {sorted({k for r in self.rows for k in r})}"
            )
        return values[-1]


class ShiftScale:
    """Same-params batch augmentation: one random gain and offset per call (torch RNG)."""

    def __call__(self, batch: Tensor) -> Tensor:
        gain = 1.0 + 0.3 * torch.rand(())
        offset = 0.3 * torch.randn(())
        return batch * gain + offset


class TinySSL(L.LightningModule):
    """lightly-style module: conv ``backbone`` + linear ``projection_head``, SimCLR-ish loss."""

    def __init__(self, lr: float = 0.05, mlp_head: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 36, 12),
        )
        self.projection_head = (
            nn.Sequential(nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 6))
            if mlp_head
            else nn.Linear(12, 6)
        )
        self.dropout = nn.Dropout(0.2)
        self.lr = lr

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0]
        z1 = F.normalize(
            self.projection_head(self.dropout(self.backbone(x + 0.1 * torch.randn_like(x)))), dim=1
        )
        z2 = F.normalize(self.projection_head(self.backbone(x + 0.1 * torch.randn_like(x))), dim=1)
        logits = z1 @ z2.T / 0.5
        return F.cross_entropy(logits, torch.arange(x.shape[0], device=x.device))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def fake_images(n: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Random images with fine labels 0..5 and coarse labels (fine // 2)."""
    generator = torch.Generator().manual_seed(seed)
    fine = torch.arange(n) % 6
    x = torch.randn(n, *IMAGE, generator=generator) + fine.view(-1, 1, 1, 1) * 0.5
    return x, fine, fine // 2


class PlainDataModule(L.LightningDataModule):
    """A user's DataModule: ``(x, y, y_coarse)`` batches, train and val loaders, nothing else."""

    def __init__(self, n_train: int = 96, n_val: int = 64, batch_size: int = 16) -> None:
        super().__init__()
        self.train = TensorDataset(*fake_images(n_train, 1))
        self.val = TensorDataset(*fake_images(n_val, 2))
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)


class FakeDataModule(PlainDataModule):
    """Offers what the callbacks look for: same_params_transform, train_eval_dataloader."""

    num_classes = 6

    def train_eval_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size)

    def same_params_transform(self) -> ShiftScale:
        return ShiftScale()


def trainer(callbacks: list, logger: Logger | None = None, **kwargs: Any) -> L.Trainer:
    """One epoch with validation (the callbacks measure there), logged to memory."""
    options: dict[str, Any] = {
        "max_epochs": 1,
        "limit_val_batches": None,
        "logger": logger or MemoryLogger(),
        "num_sanity_val_steps": 0,
        "callbacks": callbacks,
    }
    return quiet_trainer(**{**options, **kwargs})
