"""No host-device synchronisation inside a steady-state training step (issue 11.3).

On CUDA only (skipped without a GPU): a few warm-up steps of SimCLR, CARE, MoCo-v2 and
H-SSL in a bare Lightning Trainer (the first steps build caches, optimizer state and the
sampler tables on the device), then the next steps -- ``training_step``, backward and the
optimizer step, i.e. everything between ``on_train_batch_start`` and ``on_train_batch_end``
-- run under ``torch.cuda.set_sync_debug_mode("error")``, which turns every synchronising
CUDA call (``.item()``, ``bool(tensor)``, boolean-mask indexing, pageable host-to-device
copies) into an error. The online probe is on (``num_classes``), with unlabelled samples
in the batch, so its masked loss is covered too. CARE uses a simple batched flip as its
same-parameters transform: the data layer's transform is that layer's business.

Outside the window, Lightning itself converts progress-bar metrics to Python numbers after
every batch (``_LoggerConnector.on_batch_end``); that is the Trainer's, not the step's.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ssl_geom.methods import CARE, HSSL, MoCoV2, SimCLR, SSLMethod
from tests.conftest import quiet_trainer
from tests.hssl_testing import C4Backbone  # noqa: F401  (registers "test_c4")
from tests.methods_testing import TinyCNN  # noqa: F401  (registers "tiny_cnn")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

WARMUP, CHECKED, BATCH = 3, 2, 16
HEAD = {"projector_hidden_dims": [16], "projector_out_dim": 8, "num_classes": 4}


class _Views(Dataset):
    """``n_views`` random views (+ original) per sample; every 4th label is -1 (unlabelled)."""

    def __init__(self, n_views: int, original: bool) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(BATCH * (WARMUP + CHECKED), 3, 12, 12, generator=g)
        self.n_views, self.original = n_views, original

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        views = [self.x[i] + 0.1 * k for k in range(self.n_views)]
        if self.original:
            views.append(self.x[i])
        return views, torch.tensor(-1 if i % 4 == 0 else i % 3)


class _SyncErrors(L.Callback):
    """Steps from ``WARMUP`` on run with CUDA's sync debug mode set to ``error``."""

    def __init__(self) -> None:
        self.checked = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx >= WARMUP:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= WARMUP:
            torch.cuda.set_sync_debug_mode(0)
            self.checked += 1

    def on_exception(self, trainer, pl_module, exception) -> None:
        # Lightning's teardown after the failure copies to the host: let the real error surface.
        torch.cuda.set_sync_debug_mode(0)


def _methods() -> dict[str, tuple[SSLMethod, int, bool]]:
    """name -> (model, views per sample, include the original)."""
    common = {"backbone": "tiny_cnn", "in_channels": 3, "optimizer": "adam", "lr": 1e-3, **HEAD}
    return {
        "simclr": (SimCLR(**common), 2, False),
        "care": (
            CARE(n_split=4, same_params_transform=lambda b: b.flip(-1), **common),
            2,
            True,
        ),
        "moco": (MoCoV2(queue_size=64, **common), 2, False),
        "hssl": (HSSL(**{**common, "backbone": "test_c4"}), 1, False),
        # LARS with weight decay: lightly's step read two norms per parameter on the host.
        "simclr_lars": (
            SimCLR(**{**common, "optimizer": "lars", "lr": 0.3, "weight_decay": 1e-6}),
            2,
            False,
        ),
    }


@pytest.mark.parametrize("name", ["simclr", "care", "moco", "hssl", "simclr_lars"])
def test_steady_state_training_steps_do_not_synchronise(name: str) -> None:
    torch.manual_seed(0)
    model, n_views, original = _methods()[name]
    record = _SyncErrors()
    trainer = quiet_trainer(accelerator="cuda", max_steps=WARMUP + CHECKED, callbacks=[record])
    data = DataLoader(_Views(n_views, original), batch_size=BATCH, drop_last=True)
    try:
        trainer.fit(model, data)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert record.checked == CHECKED
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
