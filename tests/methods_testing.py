"""Test helpers for the method tests: a tiny registered backbone and contract-shaped data.

``tiny_cnn`` is a one-conv ``StructuredBackbone`` (G = 1) so Lightning-level tests run
in a second on CPU; ``SyntheticSSLData`` is a DataModule yielding batches in the data
contract's layout (``(views, y)`` for training, ``(x, y)`` for eval) from a fixed seed.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ssl_geom.backbones import StructuredBackbone, register_backbone


@register_backbone("tiny_cnn", overwrite=True)
class TinyCNN(StructuredBackbone):
    """``Conv3x3 -> BN -> ReLU`` with ``width`` channels, returned as ``(B, C, 1, H, W)``."""

    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.out_channels = width
        self.group_size = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).unsqueeze(2)


class _Views(Dataset):
    """Deterministic per-index samples: ``n_views`` noisy copies (+ the original) and a label."""

    def __init__(
        self, n: int, size: int, channels: int, n_views: int, original: bool, classes: int
    ):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, channels, size, size, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.n_views, self.original = n_views, original

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(1000 + i)
        views = [
            self.x[i] + 0.1 * torch.randn(self.x[i].shape, generator=g) for _ in range(self.n_views)
        ]
        if self.original:
            views.append(self.x[i])
        return views, self.y[i]


class _Eval(Dataset):
    def __init__(self, base: _Views) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.base.x[i], self.base.y[i]


class SyntheticSSLData(L.LightningDataModule):
    """Contract-shaped synthetic DataModule (no shuffling, so runs are reproducible)."""

    num_classes = 4
    in_channels = 3

    def __init__(
        self,
        batch_size: int = 8,
        n: int = 32,
        size: int = 8,
        n_views: int = 2,
        include_original: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.include_original = include_original
        self.ds = _Views(n, size, self.in_channels, n_views, include_original, self.num_classes)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.ds, batch_size=self.batch_size, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_Eval(self.ds), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(_Eval(self.ds), batch_size=self.batch_size)
