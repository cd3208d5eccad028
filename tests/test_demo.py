"""``make demo``'s entry point on a reduced budget (1 epoch, 512 real Fashion-MNIST images)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ssl_geom.demo import run_demo, summary

FASHION = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(
    not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist (make setup installs it)"
)


def test_demo_trains_care_and_the_frozen_baseline_and_summarises(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", epochs=1, max_train_samples=512)

    # kNN needs no training: even random conv features put similar garments together,
    # so both beat the 10% of a constant guess on ten balanced classes. The linear probe
    # barely moves in 4 warm-up steps, so it is only checked to be a percentage.
    assert 10.0 < result.care_knn_acc <= 100.0 and 10.0 < result.frozen_knn_acc <= 100.0
    assert 0.0 <= result.care_probe_acc <= 100.0 and 0.0 <= result.frozen_probe_acc <= 100.0
    # Unit-norm embeddings: a Wahba residual lies in [0, 2 sqrt(n)] and worst >= mean.
    assert 0.0 <= result.wahba_mean <= result.wahba_max
    assert math.isfinite(result.gamma_f) and result.gamma_f >= 0.0
    # ProjectorRank reads the projector's first linear layer, 128 -> 128 in the demo config.
    assert 1 <= result.projector_rank <= 128 and result.embedding_rank >= 1

    text = summary(result)
    assert f"{result.care_probe_acc:.1f}%" in text and f"{result.frozen_knn_acc:.1f}%" in text
    assert f"tensorboard --logdir {tmp_path / 'demo'}" in text
    for run in ("care", "frozen"):
        assert list((tmp_path / "demo" / run).rglob("events.out.tfevents.*")), run
