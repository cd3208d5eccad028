"""Random draws per process (issue 23): rank 0 keeps its source, other ranks a stream of their own.

The streams: CARE's per-chunk augmentation pairs (``SameParams.pair(seed=...)``), H-SSL's fiber
positions and A-SSL's base (``SSLMethod.draw_generator``), and the device augmentation's
parameters (``Augmentation.device_views(rank=...)``). Each test compares against an independent
computation: rank 0 against the source the code used before (the global RNG, or a generator
seeded by the seed and run on), rank ``r > 0`` against a generator seeded by
``stream_seed(seed, r, call)``, and a resumed run against an uninterrupted one. The last test
checks that a real two-process DDP step hands every stream its rank.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torchvision.transforms import v2

from ssl_geom.augment import Augmentation, DeviceSameParams, SameParamsTransform
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.losses.fibers import FiberPairs
from ssl_geom.methods import HSSL
from ssl_geom.rank_draws import RankDraws, run_seed, seeded_cpu_rng, stream_seed
from tests.ddp_utils import run_distributed
from tests.hssl_testing import C4Backbone
from tests.world_size_testing import draws_entry

assert C4Backbone  # importing it registers the backbone 'test_c4'

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_stream_seeds_are_distinct_for_neighbouring_seeds_ranks_and_calls() -> None:
    seeds = {stream_seed(s, r, c) for s in range(4) for r in range(4) for c in range(16)}
    assert len(seeds) == 4 * 4 * 16
    assert all(0 <= s < 2**63 for s in seeds)
    assert stream_seed(7, 3, 11) == stream_seed(7, 3, 11)
    with pytest.raises(ValueError, match="rank and call must be >= 0"):
        stream_seed(0, -1, 0)


def test_rank_zero_gets_no_seed_and_other_ranks_their_stream_call_by_call() -> None:
    draws = RankDraws(seed=5)
    assert [draws.next_seed(0), draws.next_seed(1), draws.next_seed(2)] == [
        None,
        stream_seed(5, 1, 1),
        stream_seed(5, 2, 2),
    ]
    assert draws.state_dict() == {"calls": 3}


def test_without_a_seed_the_stream_follows_seed_everything(monkeypatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "42")
    assert run_seed() == 42
    assert RankDraws().next_seed(1) == stream_seed(42, 1, 0)
    monkeypatch.delenv("PL_GLOBAL_SEED")
    assert RankDraws().next_seed(1) == stream_seed(0, 1, 0)


def test_seeded_cpu_rng_draws_from_the_seed_and_restores_the_global_stream() -> None:
    torch.manual_seed(3)
    expected_after = torch.rand(4)
    torch.manual_seed(3)
    with seeded_cpu_rng(11):
        inside = torch.rand(4)
    torch.testing.assert_close(inside, _rand(11, 4))
    torch.testing.assert_close(torch.rand(4), expected_after)  # the caller's stream went on


def _rand(seed: int, n: int) -> torch.Tensor:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- CARE's pairs
def _cpu_pairs() -> SameParamsTransform:
    return SameParamsTransform([v2.RandomResizedCrop(8, antialias=True)], MEAN, STD)


def test_cpu_pairs_without_a_seed_draw_from_the_global_rng_as_before() -> None:
    batch = torch.randn(8, 3, 8, 8)
    t = _cpu_pairs()
    torch.manual_seed(0)
    first, second = t.pair(batch, 2)
    torch.manual_seed(0)  # the loop pair() stands for: group by group, first view then second
    expected = [t(c) for c in batch.split(4) for _ in range(2)]
    torch.testing.assert_close(first, torch.cat(expected[0::2]))
    torch.testing.assert_close(second, torch.cat(expected[1::2]))


def test_cpu_pairs_with_a_seed_draw_from_it_and_leave_the_global_rng_alone() -> None:
    batch = torch.randn(8, 3, 8, 8)
    t = _cpu_pairs()
    torch.manual_seed(0)
    seeded = t.pair(batch, 2, seed=99)
    after = torch.rand(3)
    torch.manual_seed(0)
    torch.testing.assert_close(torch.rand(3), after)  # nothing was drawn from it
    torch.manual_seed(99)
    for got, want in zip(seeded, t.pair(batch, 2), strict=True):
        torch.testing.assert_close(got, want)
    assert not torch.equal(seeded[0], t.pair(batch, 2, seed=100)[0])


def _device_aug(seed: int = 0) -> Augmentation:
    return Augmentation(8, 3, MEAN, STD, augment_on="device", seed=seed)


def test_device_pairs_with_a_seed_use_a_fresh_generator_and_without_one_their_own() -> None:
    batch = torch.randn(8, 3, 8, 8)
    pairs = _device_aug().same_params("simclr")
    assert isinstance(pairs, DeviceSameParams)
    reference = _device_aug().device_augment()  # the generator today's pairs run on
    own = pairs.pair(batch, 2)
    torch.testing.assert_close(own[0], reference.same_params(batch, 2))
    torch.testing.assert_close(own[1], reference.same_params(batch, 2))
    g = torch.Generator().manual_seed(7)
    seeded = pairs.pair(batch, 2, seed=7)
    torch.testing.assert_close(seeded[0], reference.same_params(batch, 2, g))
    torch.testing.assert_close(seeded[1], reference.same_params(batch, 2, g))


def test_device_pairs_resume_their_generator_from_the_saved_state() -> None:
    batch = torch.randn(8, 3, 8, 8)
    uninterrupted = _device_aug().same_params("simclr")
    for _ in range(3):
        uninterrupted.pair(batch, 2)
    state = uninterrupted.state_dict()
    resumed = _device_aug().same_params("simclr")
    resumed.load_state_dict(state)
    for got, want in zip(resumed.pair(batch, 2), uninterrupted.pair(batch, 2), strict=True):
        torch.testing.assert_close(got, want)


def test_a_global_rng_transform_refuses_a_generator_state() -> None:
    with pytest.raises(ValueError, match=r"same data\.augment_on"):
        _cpu_pairs().load_state_dict({"cpu": torch.zeros(1, dtype=torch.uint8)})


# --------------------------------------------------------------------------- device views
def _views(aug: Augmentation, images: torch.Tensor, rank: int) -> torch.Tensor:
    return torch.cat(aug.device_views(images, 2, include_original=False, rank=rank))


def test_device_views_rank_zero_runs_on_its_seeded_generator_and_rank_one_has_its_own() -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    stacked = images.repeat(2, 1, 1, 1)
    reference = _device_aug(seed=3).device_augment()
    rank0, rank1 = _device_aug(seed=3), _device_aug(seed=3)
    for call in range(3):
        torch.testing.assert_close(_views(rank0, images, 0), reference(stacked))
        g = torch.Generator().manual_seed(stream_seed(3, 1, call))
        got = _views(rank1, images, 1)
        torch.testing.assert_close(got, reference(stacked, generator=g))
        assert not torch.equal(got, _views(_device_aug(seed=3), images, 0))


@pytest.mark.parametrize("rank", [0, 1])
def test_a_resumed_datamodule_draws_the_device_views_of_an_uninterrupted_run(rank: int) -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    uninterrupted = _device_aug(seed=1)
    for _ in range(3):
        _views(uninterrupted, images, rank)
    resumed = _device_aug(seed=1)
    resumed.load_state_dict(uninterrupted.state_dict())
    torch.testing.assert_close(_views(resumed, images, rank), _views(uninterrupted, images, rank))
    fresh = _views(_device_aug(seed=1), images, rank)  # what a resume without the state drew
    assert not torch.equal(fresh, _views(resumed, images, rank))


# --------------------------------------------------------------------------- fiber draws
def _hssl(rank: int) -> HSSL:
    torch.manual_seed(0)
    model = HSSL(backbone="test_c4", in_channels=3, projector_hidden_dims=[8])
    # what ssl_step and on_save_checkpoint read of a trainer
    model._trainer = SimpleNamespace(global_rank=rank, world_size=1)
    return model


class _Spy:
    """Records the pairs a method's bundles draw."""

    def __init__(self, model: HSSL) -> None:
        self.drawn: list[FiberPairs] = []
        real = model.bundles.pairs

        def pairs(prepared, generator=None):
            self.drawn.append(real(prepared, generator))
            return self.drawn[-1]

        model.bundles.pairs = pairs  # type: ignore[method-assign]


def test_fiber_draws_on_rank_zero_come_from_the_global_rng_and_on_rank_one_from_its_stream(
    monkeypatch,
) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "4")
    x = [torch.randn(16, 3, 8, 8)]
    for rank in (0, 1):
        model, expected = _hssl(rank), _hssl(rank)
        spy = _Spy(model)
        torch.manual_seed(5)
        model.ssl_step(x, 0)
        prepared = expected.bundles.prepare(expected.backbone(x[0]))
        torch.manual_seed(5)
        g = None if rank == 0 else torch.Generator().manual_seed(stream_seed(4, 1, 0))
        want = expected.bundles.pairs(prepared, g)
        torch.testing.assert_close(spy.drawn[0].start1, want.start1)
        torch.testing.assert_close(spy.drawn[0].start2, want.start2)


def test_a_resumed_method_draws_the_fibers_of_an_uninterrupted_run_on_other_ranks() -> None:
    x = [torch.randn(16, 3, 8, 8)]
    uninterrupted = _hssl(1)
    spy = _Spy(uninterrupted)
    for step in range(3):
        uninterrupted.ssl_step(x, step)
    checkpoint: dict = {}
    uninterrupted.on_save_checkpoint(checkpoint)
    assert checkpoint["rank_draws"] == {"calls": 3}
    resumed = _hssl(1)
    resumed_spy = _Spy(resumed)
    resumed.on_load_checkpoint(checkpoint)
    resumed.ssl_step(x, 3)
    uninterrupted.ssl_step(x, 3)
    torch.testing.assert_close(resumed_spy.drawn[0].start1, spy.drawn[3].start1)
    torch.testing.assert_close(resumed_spy.drawn[0].start2, spy.drawn[3].start2)
    fresh = _hssl(1)  # without the saved count it would redraw step 0's positions
    fresh_spy = _Spy(fresh)
    fresh.ssl_step(x, 3)
    torch.testing.assert_close(fresh_spy.drawn[0].start1, spy.drawn[0].start1)


# --------------------------------------------------------------------------- two processes
@pytest.mark.ddp
def test_under_ddp_each_rank_draws_from_its_own_stream(tmp_path) -> None:
    """A real 2-process DDP step: rank 0 keeps every stream's own source (``None``), rank 1
    draws the fibers and CARE's pairs from ``(run seed 3, rank 1, step 0)`` and the device
    views from ``(data seed 5, rank 1, batch 0)``."""
    root = write_fake_dataset("cifar10", tmp_path, n_train=32, n_test=16)
    rank0, rank1 = run_distributed(draws_entry, 2, str(root))
    assert rank0 == {"fibers": [None], "pairs": [None], "views": [None]}
    assert rank1 == {
        "fibers": [stream_seed(3, 1, 0)],
        "pairs": [stream_seed(3, 1, 0)],
        "views": [stream_seed(5, 1, 0)],
    }
