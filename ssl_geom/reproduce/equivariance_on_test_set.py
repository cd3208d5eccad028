"""Test-set equivariance of a trained run for the CARE table: Wahba error and γ_f (CARE Fig. 2c).

CARE (Gupta et al., arXiv:2306.13924, Sec. 5 / Fig. 2c): "sample a single augmentation ...
compute W_f ... over the test data. We repeat this process 20 times". Each draw is applied to
every test image (``ssl_geom.callbacks.loader_augmented_embeddings``), embeddings are the
unit-norm projector outputs (CARE's ``f``), and the table reports the mean over the 20 draws
of the Wahba error (``ssl_geom.metrics.wahba_error``), its worst case (the max: CARE reports
"a lower average error and worst-case error") and the mean of the relative equivariance γ_f
(CARE App. F.2.1, ``ssl_geom.metrics.relative_equivariance``). The Frobenius norm grows like
the square root of the number of test images, so compare values only at equal test-set size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule

from ssl_geom.callbacks import loader_augmented_embeddings
from ssl_geom.data.base import SSLDataModule
from ssl_geom.metrics import relative_equivariance, wahba_error

N_AUGMENTATIONS = 20
WAHBA_METRIC = "geometry/wahba_error_test"
WAHBA_MAX_METRIC = "geometry/wahba_error_test_max"
GAMMA_METRIC = "geometry/gamma_f_test"


def equivariance_on_test_set(
    module: LightningModule, datamodule: SSLDataModule, n_augmentations: int = N_AUGMENTATIONS
) -> dict[str, float]:
    """``{WAHBA_METRIC, WAHBA_MAX_METRIC, GAMMA_METRIC}`` of ``module`` over ``datamodule``'s
    test split."""
    f, augmented = loader_augmented_embeddings(
        module,
        datamodule.test_dataloader(),
        datamodule.same_params_transform(),
        n_augmentations=n_augmentations,
    )
    f = F.normalize(f.double(), dim=1)
    augmented = [F.normalize(f_a.double(), dim=1) for f_a in augmented]
    wahba = torch.stack([wahba_error(f, f_a) for f_a in augmented])
    gamma = torch.stack([relative_equivariance(f, f_a) for f_a in augmented])
    return {
        WAHBA_METRIC: float(wahba.mean()),
        WAHBA_MAX_METRIC: float(wahba.max()),
        GAMMA_METRIC: float(gamma.mean()),
    }
