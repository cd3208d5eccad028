"""Fiber-bundle sampling and gathering (ssl_geom.losses.fibers).

The central check is H-SSL paper Eq. 7: for an exactly equivariant map, the bundle that
A-SSL reads at ``g0`` from a transformed input equals the bundle H-SSL reads at
``g^-1 · g0`` from the untransformed one. The maps are built so that equivariance holds by
construction (C4 lifting by rotating a shared function; a circular convolution for
translation; see ``tests/hssl_testing.py``), so the equality is exact, not approximate.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from ssl_geom.losses.fibers import (
    CyclicBundles,
    GridBundles,
    IntervalBundles,
    cyclic_distance,
    emulate_group_axis,
    gather_axis,
    gather_patch,
    grid_distance,
    pool_space,
)
from tests.hssl_testing import C4Lifting, rotate_each


@pytest.fixture
def c4() -> C4Lifting:
    torch.manual_seed(0)
    return C4Lifting().double()


def test_fake_c4_map_is_equivariant(c4: C4Lifting) -> None:
    x = torch.randn(3, 1, 9, 9, dtype=torch.float64)
    z, z_rot = c4(x), c4(torch.rot90(x, 1, dims=(-2, -1)))
    expected = torch.rot90(torch.roll(z, 1, dims=2), 1, dims=(-2, -1))
    torch.testing.assert_close(z_rot, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("base_size", [1, 2, 3, 4])
def test_rotation_bundles_satisfy_eq7(c4: C4Lifting, base_size: int) -> None:
    """A-SSL pair (rotated inputs, same g0) == H-SSL pair (one input, g_i^-1 · g0)."""
    gen = torch.Generator().manual_seed(base_size)
    x = torch.randn(16, 1, 9, 9, dtype=torch.float64)
    pairs = CyclicBundles(4, base_size).sample(16, generator=gen)
    z = pool_space(c4(x))
    for shift, start in ((pairs.shift1, pairs.start1), (pairs.shift2, pairs.start2)):
        z_view = pool_space(c4(rotate_each(x, shift)))
        a_ssl = gather_axis(z_view, pairs.base, base_size, cyclic=True)
        h_ssl = gather_axis(z, start, base_size, cyclic=True)
        torch.testing.assert_close(a_ssl, h_ssl, rtol=0, atol=1e-12)
    # The check has teeth: reading the *base* (not g^-1 · g0) of the untransformed map
    # disagrees wherever the rotation was not the identity.
    moved = pairs.shift1 % 4 != 0
    assert moved.any()
    z_view = pool_space(c4(rotate_each(x, pairs.shift1)))
    wrong = gather_axis(z, pairs.base, base_size, cyclic=True)
    right = gather_axis(z_view, pairs.base, base_size, cyclic=True)
    assert not torch.allclose(wrong[moved], right[moved])


def test_translation_patches_satisfy_eq7() -> None:
    """Translation: a circular conv commutes with rolls, so patch(g0) of the shifted input
    equals patch(g^-1 · g0) of the original whenever both patches lie inside the map."""
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(conv(x))[:, :, None]  # (B, C, 1, H, W)

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(12, 2, 8, 8, dtype=torch.float64)
    pairs = GridBundles(3, max_distance=3).sample(12, 8, 8, generator=gen)
    z = f(x)
    for shift, start in ((pairs.shift1, pairs.start1), (pairs.shift2, pairs.start2)):
        view = torch.stack(
            [
                torch.roll(xi, tuple(s.tolist()), dims=(-2, -1))
                for xi, s in zip(x, shift, strict=True)
            ]
        )
        torch.testing.assert_close(
            gather_patch(f(view), pairs.base, 3), gather_patch(z, start, 3), rtol=0, atol=1e-12
        )


def test_gather_axis_order_is_fiber_after_fiber() -> None:
    z = torch.randn(5, 3, 6)
    start = torch.tensor([0, 1, 3, 4, 5])
    got = gather_axis(z, start, 3, cyclic=True)
    # Independent loop: concatenate the channel vectors at s, s+1, s+2 (mod 6).
    expected = torch.stack(
        [torch.cat([z[n, :, (int(s) + k) % 6] for k in range(3)]) for n, s in enumerate(start)]
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert got.shape == (5, 9)


def test_gather_patch_order_and_shape() -> None:
    z = torch.randn(4, 3, 2, 5, 6)
    corner = torch.tensor([[0, 0], [1, 2], [3, 4], [2, 0]])
    got = gather_patch(z, corner, 2)
    # Independent loop: fibers (C*G numbers per pixel) in row-major order of the patch.
    expected = torch.stack(
        [
            torch.cat([z[n, :, :, r + i, c + j].reshape(-1) for i in range(2) for j in range(2)])
            for n, (r, c) in enumerate(corner.tolist())
        ]
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert got.shape == (4, 2 * 2 * 3 * 2)


def test_bad_bundles_are_refused_when_built_or_when_a_map_size_is_first_seen() -> None:
    with pytest.raises(ValueError, match=r"base of 7 elements does not fit .* size 6"):
        IntervalBundles(6, base_size=7)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        CyclicBundles(4, max_distance=-1)
    with pytest.raises(ValueError, match="fewer than 1 patch positions"):
        GridBundles(4).sample(4, 3, 8)
    with pytest.raises(ValueError, match="fewer than 2 patch positions"):
        GridBundles(3, min_positions=2).sample(4, 3, 3)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 8),
    base_size=st.integers(1, 8),
    max_distance=st.one_of(st.none(), st.integers(0, 8)),
    seed=st.integers(0, 2**16),
)
def test_axis_samplers_respect_range_and_distance(
    size: int, base_size: int, max_distance: int | None, seed: int
) -> None:
    if base_size > size:
        return
    gen = torch.Generator().manual_seed(seed)
    bound = size if max_distance is None else max_distance
    cyc = CyclicBundles(size, base_size, max_distance).sample(32, generator=gen)
    assert (cyclic_distance(cyc, size) <= bound).all()
    for start, shift in ((cyc.start1, cyc.shift1), (cyc.start2, cyc.shift2)):
        assert ((start >= 0) & (start < size)).all()
        assert torch.equal(start, (cyc.base - shift) % size)
    itv = IntervalBundles(size, base_size, max_distance).sample(32, generator=gen)
    assert ((itv.start1 - itv.start2).abs() <= bound).all()
    for start, shift in ((itv.start1, itv.shift1), (itv.start2, itv.shift2)):
        assert ((start >= 0) & (start + base_size <= size)).all()
        assert torch.equal(start, itv.base - shift)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    patch=st.integers(1, 4),
    max_distance=st.one_of(st.none(), st.floats(0, 6)),
    seed=st.integers(0, 2**16),
)
def test_grid_sampler_respects_range_and_distance(
    height: int, width: int, patch: int, max_distance: float | None, seed: int
) -> None:
    if patch > min(height, width):
        return
    pairs = GridBundles(patch, max_distance).sample(
        32, height, width, generator=torch.Generator().manual_seed(seed)
    )
    if max_distance is not None:
        assert (grid_distance(pairs) <= max_distance + 1e-9).all()
    limit = torch.tensor([height - patch, width - patch])
    for start, shift in ((pairs.start1, pairs.shift1), (pairs.start2, pairs.shift2)):
        assert ((start >= 0) & (start <= limit)).all()
        assert torch.equal(start, pairs.base - shift)
    z = torch.randn(32, 2, 1, height, width)
    assert gather_patch(z, pairs.start1, patch).shape == (32, patch * patch * 2)


@pytest.mark.parametrize("max_distance", [None, 1])
def test_interval_pairs_are_uniform_over_valid_pairs(max_distance: int | None) -> None:
    """Every in-range pair within the bound is equally likely (None: independent starts).

    Size 5, base 2 -> starts 0..3; the valid pairs are enumerated independently.
    """
    n = 40_000
    pairs = IntervalBundles(5, 2, max_distance).sample(
        n, generator=torch.Generator().manual_seed(0)
    )
    bound = 3 if max_distance is None else max_distance
    valid = [(a, b) for a, b in itertools.product(range(4), repeat=2) if abs(a - b) <= bound]
    counts = torch.zeros(4, 4)
    counts.index_put_((pairs.start1, pairs.start2), torch.ones(n), accumulate=True)
    expected = n / len(valid)
    for a, b in itertools.product(range(4), repeat=2):
        if (a, b) in valid:
            # 5 binomial standard deviations around n / |valid|.
            assert abs(counts[a, b] - expected) < 5 * expected**0.5
        else:
            assert counts[a, b] == 0


def test_cyclic_distance_bound_samples_every_allowed_residue() -> None:
    pairs = CyclicBundles(4, 1, 1).sample(4000, generator=torch.Generator().manual_seed(0))
    shifts = ((pairs.shift2 - pairs.shift1) % 4).bincount(minlength=4)
    # Allowed residues at cyclic distance <= 1 on C4: 0, 1, 3 (each ~1/3), never 2.
    assert shifts[2] == 0
    assert all(abs(int(shifts[r]) - 4000 / 3) < 150 for r in (0, 1, 3))


def test_samplers_are_deterministic_under_a_generator() -> None:
    def draw(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        out = [
            CyclicBundles(4, 2, 1).sample(64, generator=gen).start1,
            IntervalBundles(6, 1, 2).sample(64, generator=gen).start2,
            GridBundles(2, 2.0).sample(64, 7, 7, generator=gen).start1,
            GridBundles(2).base(torch.zeros(64, 1, 1, 7, 7), generator=gen),
        ]
        return out

    for a, b in zip(draw(3), draw(3), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(draw(3), draw(4), strict=True))


def test_sample_base_keeps_the_bundle_inside() -> None:
    pooled = torch.zeros(500, 2, 6)
    base = IntervalBundles(6, 4).base(pooled, generator=torch.Generator().manual_seed(0))
    assert base.shape == (500,)
    # Starts 0..2 all occur, nothing beyond size - base_size = 2.
    assert set(base.tolist()) == {0, 1, 2}
    cyc = CyclicBundles(4, 4).base(pooled[:, :, :4], generator=torch.Generator().manual_seed(0))
    assert set(cyc.tolist()) == {0, 1, 2, 3}


def test_emulated_axis_matches_the_papers_reshape() -> None:
    """MLP (Table 2): the 2048 features reshaped to (16, 128); fiber i is row i."""
    z = torch.randn(3, 2048)
    emulated = emulate_group_axis(z[:, :, None, None, None], 16)
    assert emulated.shape == (3, 128, 16, 1, 1)
    rows = z.reshape(3, 16, 128)
    for i in (0, 5, 15):
        torch.testing.assert_close(emulated[:, :, i, 0, 0], rows[:, i], rtol=0, atol=0)
    streams = torch.randn(2, 4, 6, 3, 3)
    assert emulate_group_axis(streams, 6) is streams
    with pytest.raises(ValueError, match="cannot emulate a group axis of size 16"):
        emulate_group_axis(torch.randn(2, 100, 1, 1, 1), 16)


def test_pool_space_is_the_spatial_mean() -> None:
    z = torch.arange(2 * 1 * 1 * 2 * 2, dtype=torch.float32).reshape(2, 1, 1, 2, 2)
    # Means of (0, 1, 2, 3) and (4, 5, 6, 7).
    torch.testing.assert_close(pool_space(z)[:, 0, 0], torch.tensor([1.5, 5.5]))
