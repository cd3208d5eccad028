"""Sampling and gathering fiber bundles: the positive pairs of H-SSL, F-SSL and A-SSL.

Hand-written on purpose: no maintained package samples H-SSL fiber bundles (lightly,
solo-learn and friends work on augmented *inputs*, never on the group axis of one
representation), so this module is plain tensor code with no Lightning in it.

Notation (H-SSL paper Sec. 2.1 "Notation"). A *fiber* ``z(g)`` is every channel at one
group element ``g``; a *fiber bundle* ``z(g) = [z(g) | g in g]`` concatenates the fibers of
an *ordered* set ``g`` of elements, in that order (a rotation may only permute an unordered
set, so order is part of the definition). The regular representation acts by moving the
base: ``Γ_g[z(g0)] = z(g^-1 · g0)``.

- A-SSL (Eq. 5, App. A "Empirical Validation"): two transformed inputs, the *same* base
  ``g0`` read from both feature maps -- :func:`sample_base` and the ``gather_*`` functions.
- H-SSL (Eq. 7): one input, bundles at ``g1^-1 · g0`` and ``g2^-1 · g0`` --
  :func:`sample_cyclic_pairs`, :func:`sample_interval_pairs`, :func:`sample_grid_pairs`.
- F-SSL (Eq. 6): H-SSL over the translation group, ``g0`` a ``p x p`` spatial patch.

Group elements act on an axis by shifting: ``g^-1 · h = h - g``. The base ``g0`` is the
contiguous run ``start, start + 1, ..., start + |g0| - 1``, so ``g^-1 · g0`` starts at
``start - g``. Three topologies occur:

- *cyclic* (C4 rotation): indices are taken mod ``G``;
- *interval* (SESN scales, an emulated axis): no wrap-around, every bundle stays inside
  ``[0, G)``;
- *grid* (translation): the spatial axes ``H, W``, ``p x p`` patches, no padding.

The *topographic distance* between the two bundles (H-SSL Sec. 4.3) is the shift between
them: ``|g1 - g2|`` (cyclic distance on a cyclic axis, Euclidean on the grid, as the paper
approximates it). ``max_distance`` bounds it; ``None`` leaves the two bundles independent
(App. A: "independently for each branch"). Every sampler draws *uniformly over the valid
pairs* within the bound, on the CPU from an optional ``torch.Generator`` (so results do not
depend on the device), and returns tensors on ``device``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch

Topology = Literal["cyclic", "interval", "grid"]
TOPOLOGIES: tuple[str, ...] = ("cyclic", "interval", "grid")

__all__ = [
    "TOPOLOGIES",
    "BundleSpec",
    "FiberPairs",
    "cyclic_distance",
    "emulate_group_axis",
    "gather_axis",
    "gather_patch",
    "grid_distance",
    "pool_space",
    "sample_base",
    "sample_cyclic_pairs",
    "sample_grid_pairs",
    "sample_interval_pairs",
]


@dataclass(frozen=True)
class FiberPairs:
    """Per-sample base ``g0``, group elements ``g1, g2`` and where their bundles start.

    On a 1-D axis every field has shape ``(B,)``; on the spatial grid ``(B, 2)`` (row, col).
    ``start_i = g0 - g_i`` (mod ``G`` on a cyclic axis) is the first element of
    ``g_i^-1 · g0``; it is what the ``gather_*`` functions take.
    """

    base: torch.Tensor
    shift1: torch.Tensor
    shift2: torch.Tensor
    start1: torch.Tensor
    start2: torch.Tensor


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_max_distance(max_distance: float | None) -> None:
    if max_distance is not None and not max_distance >= 0:
        raise ValueError(f"max_distance must be >= 0 or None (no bound), got {max_distance!r}")


def _valid_starts(size: int, base_size: int, axis: str) -> int:
    """Number of positions a bundle of ``base_size`` contiguous elements fits at, no padding."""
    _check_positive(f"{axis} size", size)
    _check_positive("base size", base_size)
    if base_size > size:
        raise ValueError(
            f"a base of {base_size} elements does not fit the {axis} axis of size {size}; "
            f"use a base size of at most {size}"
        )
    return size - base_size + 1


def _uniform_below(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One uniform integer in ``[0, high)`` per entry of ``high`` (a LongTensor, all >= 1)."""
    u = torch.rand(high.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((u * high).long(), high - 1)


def sample_base(
    batch_size: int,
    sizes: tuple[int, ...],
    base_sizes: tuple[int, ...],
    *,
    cyclic: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A-SSL's base: one random start per sample so the bundle fits every axis.

    Returns ``(B, len(sizes))`` starts (one column per axis). On a cyclic axis any element
    can start a bundle; otherwise starts are in ``[0, size - base_size]``.
    """
    _check_positive("batch_size", batch_size)
    if len(sizes) != len(base_sizes):
        raise ValueError(f"sizes {sizes} and base_sizes {base_sizes} must have the same length")
    valid = [_valid_starts(s, b, "group") for s, b in zip(sizes, base_sizes, strict=True)]
    highs = list(sizes) if cyclic else valid
    high = torch.tensor(highs, dtype=torch.long).expand(batch_size, -1)
    return _uniform_below(high, generator).to(device)


def sample_cyclic_pairs(
    batch_size: int,
    size: int,
    base_size: int = 1,
    max_distance: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> FiberPairs:
    """H-SSL pairs on a cyclic axis of ``size`` elements (C4 rotation: ``size = 4``).

    ``g0, g1`` are uniform; ``g2 = g1 + δ`` with ``δ`` uniform over the distinct residues
    whose cyclic distance ``min(δ, size - δ)`` is at most ``max_distance``.
    """
    _check_positive("batch_size", batch_size)
    _valid_starts(size, base_size, "cyclic group")
    _check_max_distance(max_distance)
    bound = size if max_distance is None else max_distance
    residues = torch.tensor([r for r in range(size) if min(r, size - r) <= bound])
    high = torch.full((batch_size,), size, dtype=torch.long)
    base = _uniform_below(high, generator)
    shift1 = _uniform_below(high, generator)
    pick = _uniform_below(torch.full((batch_size,), len(residues), dtype=torch.long), generator)
    shift2 = (shift1 + residues[pick]) % size
    pairs = FiberPairs(base, shift1, shift2, (base - shift1) % size, (base - shift2) % size)
    return _to(pairs, device)


def sample_interval_pairs(
    batch_size: int,
    size: int,
    base_size: int = 1,
    max_distance: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> FiberPairs:
    """H-SSL pairs on a non-cyclic axis (SESN scales, an emulated axis); bundles stay in ``[0, size)``."""
    _check_positive("batch_size", batch_size)
    pairs = _sample_box_pairs(
        batch_size, (size,), (base_size,), max_distance, generator, ("group",)
    )
    return _to(FiberPairs(*(t[:, 0] for t in _fields(pairs))), device)


def sample_grid_pairs(
    batch_size: int,
    height: int,
    width: int,
    patch: int = 1,
    max_distance: float | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> FiberPairs:
    """H-SSL over translation / F-SSL (Eq. 6): two ``patch x patch`` patches of an ``H x W`` map.

    Patches never leave the map (no padding); the Euclidean distance between the two patch
    corners is at most ``max_distance``. Fields have shape ``(B, 2)`` as (row, col).
    """
    _check_positive("batch_size", batch_size)
    pairs = _sample_box_pairs(
        batch_size, (height, width), (patch, patch), max_distance, generator, ("height", "width")
    )
    return _to(pairs, device)


def _sample_box_pairs(
    batch_size: int,
    sizes: tuple[int, ...],
    base_sizes: tuple[int, ...],
    max_distance: float | None,
    generator: torch.Generator | None,
    axes: tuple[str, ...],
) -> FiberPairs:
    """Uniform over pairs of in-range starts ``(s1, s2)`` with ``‖s1 - s2‖_2 <= max_distance``.

    Drawn in two steps: the offset ``δ = s2 - s1`` with probability proportional to the number
    of in-range ``s1`` it allows (``prod_d (M_d - |δ_d|)``, ``M_d`` valid starts per axis),
    then ``s1`` uniform among those. With no bound this is two independent uniform starts.
    """
    _check_max_distance(max_distance)
    valid = [_valid_starts(s, b, a) for s, b, a in zip(sizes, base_sizes, axes, strict=True)]
    offsets = torch.tensor(
        list(itertools.product(*(range(-(m - 1), m) for m in valid))), dtype=torch.long
    ).reshape(-1, len(valid))
    counts = (torch.tensor(valid) - offsets.abs()).prod(dim=1).double()
    if max_distance is not None:
        within = offsets.double().pow(2).sum(dim=1) <= float(max_distance) ** 2 + 1e-9
        counts = counts * within
    delta = offsets[torch.multinomial(counts, batch_size, replacement=True, generator=generator)]
    m = torch.tensor(valid, dtype=torch.long)
    low = (-delta).clamp(min=0)
    high = m - delta.clamp(min=0)
    start1 = low + _uniform_below(high - low, generator)
    start2 = start1 + delta
    base = _uniform_below(m.expand(batch_size, -1), generator)
    return FiberPairs(base, base - start1, base - start2, start1, start2)


def _fields(pairs: FiberPairs) -> tuple[torch.Tensor, ...]:
    return (pairs.base, pairs.shift1, pairs.shift2, pairs.start1, pairs.start2)


def _to(pairs: FiberPairs, device: torch.device | str | None) -> FiberPairs:
    if device is None:
        return pairs
    return FiberPairs(*(t.to(device) for t in _fields(pairs)))


def pool_space(z: torch.Tensor) -> torch.Tensor:
    """``(B, C, G, H, W) -> (B, C, G)``: average the spatial axes.

    H-SSL App. A: when the studied transformation is not translation, the spatial axes are
    average-pooled before the projection head.
    """
    _check_structured(z)
    return z.mean(dim=(-2, -1))


def emulate_group_axis(z: torch.Tensor, group_size: int) -> torch.Tensor:
    """View an unstructured map as if it had a group axis of ``group_size`` (H-SSL Table 2).

    - ``G == group_size`` (the "CNN (6 x CHW)" baselines): returned unchanged; its ``G``
      streams are read as if they were scales.
    - ``G == 1`` and ``C`` divisible by ``group_size`` (the MLP): the ``C`` features are
      reshaped to ``(group_size, C / group_size)`` rows, as the paper reshapes 2048 to
      ``(16, 128)``; row ``i`` becomes the fiber at element ``i``.
    """
    _check_structured(z)
    _check_positive("group_size", group_size)
    b, c, g, h, w = z.shape
    if g == group_size:
        return z
    if g == 1 and c % group_size == 0:
        return z.reshape(b, group_size, c // group_size, h, w).transpose(1, 2)
    raise ValueError(
        f"cannot emulate a group axis of size {group_size} on a map of shape {tuple(z.shape)}: "
        f"need G == {group_size}, or G == 1 with C divisible by {group_size}"
    )


def gather_axis(
    z: torch.Tensor, start: torch.Tensor, base_size: int, *, cyclic: bool
) -> torch.Tensor:
    """Fiber bundles along the group axis: ``(B, C, G)`` and starts ``(B,)`` -> ``(B, |g0| * C)``.

    Sample ``n``'s bundle is ``[z_n(s), z_n(s + 1), ..., z_n(s + |g0| - 1)]`` (mod ``G`` when
    ``cyclic``), concatenated fiber after fiber in that order (output index ``k * C + c``).
    On a non-cyclic axis a bundle that would leave ``[0, G)`` is an error, never a wrap.
    """
    if z.ndim != 3:
        raise ValueError(f"expected a pooled map (B, C, G), got shape {tuple(z.shape)}")
    b, c, g = z.shape
    _valid_starts(g, base_size, "group")
    index = start.reshape(b, 1).to(z.device) + torch.arange(base_size, device=z.device)
    if cyclic:
        index = index % g
    elif start.numel() and (int(start.min()) < 0 or int(start.max()) > g - base_size):
        raise ValueError(
            f"bundle starts must lie in [0, {g - base_size}] on a non-cyclic axis of size {g} "
            f"with base size {base_size}; got starts in [{int(start.min())}, {int(start.max())}]"
        )
    bundles = z.gather(2, index[:, None, :].expand(b, c, base_size))
    return bundles.transpose(1, 2).reshape(b, base_size * c)


def gather_patch(z: torch.Tensor, start: torch.Tensor, patch: int) -> torch.Tensor:
    """Spatial fiber bundles: ``(B, C, G, H, W)`` and corners ``(B, 2)`` -> ``(B, p*p * C*G)``.

    A spatial fiber is everything at one pixel (``C * G`` numbers); the patch's fibers are
    concatenated in row-major order of the patch. Patches never leave the map (no padding).
    """
    _check_structured(z)
    b, c, g, h, w = z.shape
    _valid_starts(h, patch, "height")
    _valid_starts(w, patch, "width")
    start = start.reshape(b, 2).to(z.device)
    if start.numel() and (
        int(start.min()) < 0
        or int(start[:, 0].max()) > h - patch
        or int(start[:, 1].max()) > w - patch
    ):
        raise ValueError(
            f"patch corners must lie in [0, {h - patch}] x [0, {w - patch}] for {patch}x{patch} "
            f"patches of a {h}x{w} map; got corners in [{int(start.min())}, {int(start.max())}]"
        )
    offsets = torch.arange(patch, device=z.device)
    rows = (start[:, 0:1] + offsets)[:, :, None]
    cols = (start[:, 1:2] + offsets)[:, None, :]
    batch = torch.arange(b, device=z.device)[:, None, None]
    # Advanced indices separated by slices move to the front: (B, p, p, C, G).
    bundles = z[batch, :, :, rows, cols]
    return bundles.reshape(b, patch * patch * c * g)


def _check_structured(z: torch.Tensor) -> None:
    if z.ndim != 5:
        raise ValueError(
            f"expected a structured feature map (B, C, G, H, W), got shape {tuple(z.shape)}"
        )


def grid_distance(pairs: FiberPairs) -> torch.Tensor:
    """Euclidean distance between the two bundles of grid pairs, ``(B,)`` float."""
    return (pairs.start1 - pairs.start2).double().pow(2).sum(dim=-1).sqrt()


def cyclic_distance(pairs: FiberPairs, size: int) -> torch.Tensor:
    """Cyclic distance ``min(d, size - d)`` between the two bundles of cyclic pairs, ``(B,)``."""
    d = (pairs.start1 - pairs.start2) % size
    return torch.minimum(d, size - d)


@dataclass(frozen=True)
class BundleSpec:
    """Where a method reads its fiber bundles: one object instead of five loose options.

    Args:
        topology: ``"cyclic"`` or ``"interval"`` (the group axis ``G``, after average-pooling
            the spatial axes) or ``"grid"`` (the spatial axes, ``base_size x base_size``
            patches of ``C * G``-number fibers).
        base_size: ``|g0|`` on an axis; the patch side on the grid.
        max_distance: bound on the topographic distance of H-SSL pairs (``None``: none).
        emulated_size: read the map through :func:`emulate_group_axis` with this size first
            (H-SSL Table 2 baselines); not allowed with ``"grid"``.
    """

    topology: Topology
    base_size: int = 1
    max_distance: float | None = None
    emulated_size: int | None = None

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                f"unknown topology {self.topology!r}; valid choices: {', '.join(TOPOLOGIES)}"
            )
        _check_positive("base size", self.base_size)
        _check_max_distance(self.max_distance)
        if self.emulated_size is not None:
            _check_positive("emulated_size", self.emulated_size)
            if self.topology == "grid":
                raise ValueError(
                    "an emulated group axis is one-dimensional; use topology 'cyclic' or "
                    "'interval' with emulated_size, or 'grid' without it"
                )

    def bundle_dim(self, channels: int, group_size: int) -> int:
        """Length of one bundle for a backbone map with ``channels`` x ``group_size`` fibers."""
        if self.topology == "grid":
            return self.base_size**2 * channels * group_size
        if self.emulated_size is not None and group_size == 1:
            channels = channels // self.emulated_size
        return self.base_size * channels

    def axis_size(self, group_size: int) -> int:
        """Length of the 1-D axis bundles are read from (not defined for the grid)."""
        if self.topology == "grid":
            raise ValueError("the grid topology has two axes; see its height and width")
        return self.emulated_size if self.emulated_size is not None else group_size

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """Backbone map ``(B, C, G, H, W)`` -> what :meth:`gather` reads.

        Grid: unchanged. Axis: emulated if asked, then spatial axes average-pooled to
        ``(B, C', G')`` (H-SSL App. A: pool space when the transformation is not translation).
        """
        _check_structured(z)
        if self.topology == "grid":
            return z
        if self.emulated_size is not None:
            z = emulate_group_axis(z, self.emulated_size)
        return pool_space(z)

    def sample_pairs(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> FiberPairs:
        """H-SSL pairs (Eq. 7) for a prepared map, on its device."""
        b = prepared.shape[0]
        if self.topology == "grid":
            h, w = prepared.shape[-2:]
            return sample_grid_pairs(
                b,
                h,
                w,
                self.base_size,
                self.max_distance,
                generator=generator,
                device=prepared.device,
            )
        sampler = sample_cyclic_pairs if self.topology == "cyclic" else sample_interval_pairs
        max_distance = None if self.max_distance is None else int(self.max_distance)
        return sampler(
            b,
            prepared.shape[-1],
            self.base_size,
            max_distance,
            generator=generator,
            device=prepared.device,
        )

    def sample_base(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A-SSL's base ``g0`` (one per sample) for a prepared map, on its device."""
        b = prepared.shape[0]
        if self.topology == "grid":
            sizes = tuple(prepared.shape[-2:])
            return sample_base(
                b, sizes, (self.base_size,) * 2, generator=generator, device=prepared.device
            )
        base = sample_base(
            b,
            (prepared.shape[-1],),
            (self.base_size,),
            cyclic=self.topology == "cyclic",
            generator=generator,
            device=prepared.device,
        )
        return base[:, 0]

    def gather(self, prepared: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Bundles at ``start`` as ``(B, bundle_dim)`` vectors in the fixed fiber order."""
        if self.topology == "grid":
            return gather_patch(prepared, start, self.base_size)
        return gather_axis(prepared, start, self.base_size, cyclic=self.topology == "cyclic")
