"""Regression pin: 5 seeded training steps of SimCLR, CARE and H-SSL give recorded losses.

Why: the methods layer is refactored (projector construction, fiber types, sync-free
steps, divergence checks) without meaning to change any algorithm; these numbers catch a
refactor that silently does. Everything runs in float64 (Lightning ``precision="64-true"``)
on CPU from fixed seeds, on data generated here (not through ``ssl_geom.data``, so a change
in the data layer cannot move them), without the online probe (``num_classes`` unset): the
probe is detached and has its own parameter group, so it cannot move the SSL losses, and
its own rework (readout, masking) must not re-record them.

How the expected values were produced: by running this file's ``run_losses(method)`` on
commit 65878ed (before the refactor), i.e.
``PYTHONPATH=. python -c "from tests.test_methods_regression import run_losses;
print(run_losses('simclr'), run_losses('care'), run_losses('hssl'))"``, and pasting the
printed lists. A method whose algorithm is changed on purpose is re-recorded, with the
reason in the commit message.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ssl_geom.methods import CARE, HSSL, SimCLR, SSLMethod
from tests.conftest import quiet_trainer

BATCH, STEPS = 16, 5
SMALL_MNIST = {"channels": [2, 4, 4]}
COMMON = {
    "in_channels": 1,
    "batch_size": BATCH,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "lr_schedule": "constant",
    "projector_hidden_dims": [16],
    "projector_out_dim": 8,
}


class _MnistLike(Dataset):
    """``n`` 1x28x28 images; ``n_views`` noisy copies each (+ the original last), a label."""

    def __init__(self, n_views: int, original: bool, n: int = BATCH * STEPS) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 1, 28, 28, generator=g)
        self.y = torch.arange(n) % 10
        self.noise = 0.1 * torch.randn(n, n_views, 1, 28, 28, generator=g)
        self.original = original

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        views = list(self.x[i] + self.noise[i])
        if self.original:
            views.append(self.x[i])
        return views, self.y[i]


class _Rot90Pairs:
    """CARE's same-parameters transform: one quarter-turn count per call, from its own seed."""

    def __init__(self) -> None:
        self.g = torch.Generator().manual_seed(1)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(0, 4, (), generator=self.g))
        return torch.rot90(batch, k, dims=(-2, -1))


def _model(method: str) -> tuple[SSLMethod, _MnistLike]:
    if method == "simclr":
        return SimCLR(backbone="hssl_mnist_translation", backbone_kwargs=SMALL_MNIST, **COMMON), (
            _MnistLike(2, False)
        )
    if method == "care":
        model = CARE(
            n_split=4,
            equivariance_weight=0.5,
            same_params_transform=_Rot90Pairs(),
            backbone="hssl_mnist_translation",
            backbone_kwargs=SMALL_MNIST,
            **COMMON,
        )
        return model, _MnistLike(2, True)
    model = HSSL(
        transformation="rotation",
        backbone="hssl_mnist_rotation",
        backbone_kwargs=SMALL_MNIST,
        **COMMON,
    )
    return model, _MnistLike(0, True)


class _Record(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def run_losses(method: str) -> list[float]:
    """The SSL loss (``train/loss``) of each of the first 5 steps of a seeded float64 run."""
    torch.manual_seed(0)
    model, data = _model(method)
    record = _Record()
    trainer = quiet_trainer(max_steps=STEPS, precision="64-true", callbacks=[record])
    trainer.fit(model, DataLoader(data, batch_size=BATCH, drop_last=True))
    return record.losses


EXPECTED = {
    "simclr": [
        2.9653770319274377,
        2.8950903024906522,
        2.9329638018456885,
        3.153310682037722,
        3.0479036339987546,
    ],
    "care": [
        3.442224849244086,
        3.524603984287569,
        3.40417711368099,
        3.784183610210961,
        3.4060109777021297,
    ],
    "hssl": [
        6.006610811067551,
        5.264661081086507,
        4.326250982284945,
        5.153969955248979,
        4.843503320092876,
    ],
}


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_five_seeded_steps_reproduce_the_recorded_losses(method: str) -> None:
    assert run_losses(method) == pytest.approx(EXPECTED[method], rel=1e-9, abs=1e-12)
