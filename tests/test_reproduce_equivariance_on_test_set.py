"""The CARE table's test-set equivariance (reproduce/equivariance_on_test_set.py) against a
direct computation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ssl_geom.methods import SimCLR
from ssl_geom.metrics import relative_equivariance, wahba_error
from ssl_geom.reproduce.equivariance_on_test_set import (
    GAMMA_METRIC,
    N_AUGMENTATIONS,
    WAHBA_MAX_METRIC,
    WAHBA_METRIC,
    equivariance_on_test_set,
)
from tests.methods_testing import SyntheticSSLData  # noqa: F401  (registers tiny_cnn)


class _TestSplit:
    """What equivariance_on_test_set reads from a DataModule: the test loader and the shared transform."""

    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images = images
        self.transform = transform

    def test_dataloader(self) -> DataLoader:
        labels = torch.zeros(len(self.images), dtype=torch.long)
        return DataLoader(TensorDataset(self.images, labels), batch_size=7)

    def same_params_transform(self):
        return self.transform


def _model() -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(backbone="tiny_cnn", in_channels=3, projector_hidden_dims=[16]).eval()


def test_a_flip_gives_the_metrics_of_one_direct_pass_over_all_images() -> None:
    """A deterministic transform: all 20 draws are the same flip, so each mean is one value,
    recomputed here from the model's projections of all 20 images at once."""
    model = _model()
    images = torch.rand(20, 3, 8, 8)
    metrics = equivariance_on_test_set(model, _TestSplit(images, lambda x: x.flip(-1)))
    with torch.no_grad():
        f = F.normalize(model.project(images)[1].double(), dim=1)
        f_a = F.normalize(model.project(images.flip(-1))[1].double(), dim=1)
    # float32 embeddings of batches of 7 vs of all 20 at once differ in the last bits
    tol = {"rtol": 1e-5, "atol": 0.0}
    torch.testing.assert_close(metrics[WAHBA_METRIC], float(wahba_error(f, f_a)), **tol)
    torch.testing.assert_close(metrics[WAHBA_MAX_METRIC], float(wahba_error(f, f_a)), **tol)
    torch.testing.assert_close(metrics[GAMMA_METRIC], float(relative_equivariance(f, f_a)), **tol)
    assert metrics[WAHBA_METRIC] > 0


def test_the_worst_case_is_the_largest_draw_and_the_mean_averages_all_draws() -> None:
    """Each draw flips the images or leaves them alone (a coin tossed from the draw's seed, the
    same for every batch): an identity draw has Wahba error 0 and a flip draw the flip's
    error W, so the worst case is W and the mean is W times the share of flip draws. Draw k is
    seeded with k (loader_augmented_embeddings' default seed 0), so the coins are recomputed
    here from torch.manual_seed(k)."""

    def coin_flip(x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if torch.rand(()) < 0.5 else x

    flips = []
    for k in range(N_AUGMENTATIONS):
        torch.manual_seed(k)
        flips.append(bool(torch.rand(()) < 0.5))
    assert 0 < sum(flips) < N_AUGMENTATIONS  # both kinds of draw occur
    model = _model()
    images = torch.rand(20, 3, 8, 8)
    metrics = equivariance_on_test_set(model, _TestSplit(images, coin_flip))
    with torch.no_grad():
        f = F.normalize(model.project(images)[1].double(), dim=1)
        f_a = F.normalize(model.project(images.flip(-1))[1].double(), dim=1)
    flip_error = float(wahba_error(f, f_a))
    tol = {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(metrics[WAHBA_MAX_METRIC], flip_error, **tol)
    torch.testing.assert_close(
        metrics[WAHBA_METRIC], flip_error * sum(flips) / N_AUGMENTATIONS, **tol
    )


def test_the_identity_transform_has_zero_wahba_error_and_zero_gamma() -> None:
    metrics = equivariance_on_test_set(_model(), _TestSplit(torch.rand(12, 3, 8, 8), lambda x: x))
    assert metrics[WAHBA_METRIC] < 1e-6
    assert metrics[WAHBA_MAX_METRIC] < 1e-6
    assert metrics[GAMMA_METRIC] == 0.0  # every pair is 0/0: left out, result 0 by definition
