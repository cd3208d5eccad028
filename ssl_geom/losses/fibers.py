"""Sampling and gathering fiber bundles: the positive pairs of H-SSL, F-SSL and A-SSL.

Hand-written on purpose: no maintained package samples H-SSL fiber bundles (lightly,
solo-learn and friends work on augmented *inputs*, never on the group axis of one
representation), so this module is plain tensor code with no Lightning in it. It sits with
the losses because the positive pairs are the first half of those methods' loss (Eq. 7
then InfoNCE, Eq. 3); :mod:`ssl_geom.methods.hssl` only picks the bundles for a backbone.

Notation (H-SSL paper Sec. 2.1 "Notation"). A *fiber* ``z(g)`` is every channel at one
group element ``g``; a *fiber bundle* ``z(g) = [z(g) | g in g]`` concatenates the fibers of
an *ordered* set ``g`` of elements, in that order (a rotation may only permute an unordered
set, so order is part of the definition). The regular representation acts by moving the
base: ``Γ_g[z(g0)] = z(g^-1 · g0)``.

- A-SSL (Eq. 5, App. A "Empirical Validation"): two transformed inputs, the *same* base
  ``g0`` read from both feature maps -- :meth:`Bundles.base` and :meth:`Bundles.gather`.
- H-SSL (Eq. 7): one input, bundles at ``g1^-1 · g0`` and ``g2^-1 · g0`` --
  :meth:`Bundles.pairs`.
- F-SSL (Eq. 6): H-SSL over the translation group, ``g0`` a ``p x p`` spatial patch.

Group elements act on an axis by shifting: ``g^-1 · h = h - g``. The base ``g0`` is the
contiguous run ``start, start + 1, ..., start + |g0| - 1``, so ``g^-1 · g0`` starts at
``start - g``. Three kinds of bundle occur, one class each (validated once, when built):

- :class:`CyclicBundles` (C4 rotation): indices are taken mod ``G``;
- :class:`IntervalBundles` (SESN scales, an emulated axis): no wrap-around, every bundle
  stays inside ``[0, G)``;
- :class:`GridBundles` (translation): the spatial axes ``H, W``, ``p x p`` patches, no
  padding.

The *topographic distance* between the two bundles (H-SSL Sec. 4.3) is the shift between
them: ``|g1 - g2|`` (cyclic distance on a cyclic axis, Euclidean on the grid, as the paper
approximates it). ``max_distance`` bounds it; ``None`` leaves the two bundles independent
(App. A: "independently for each branch"). Every sampler draws *uniformly over the valid
pairs* within the bound, directly on the feature map's device (optionally from a
``torch.Generator`` on that device), with no host-device synchronisation: every start it
returns is in range by construction, so the gathers do not check ranges again.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

__all__ = [
    "Bundles",
    "CyclicBundles",
    "FiberPairs",
    "GridBundles",
    "IntervalBundles",
    "cyclic_distance",
    "emulate_group_axis",
    "gather_axis",
    "gather_patch",
    "grid_distance",
    "pool_space",
]

Device = torch.device | str | None


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


def _uniform_below(
    high: torch.Tensor | int,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: Device,
) -> torch.Tensor:
    """Uniform integers in ``[0, high)`` of ``shape`` (``high`` an int or a broadcastable
    LongTensor, all >= 1), drawn on ``device`` as ``floor(u * high)`` from float64 ``u``."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    drawn = (u * high).long()
    # A Python bound stays a kernel argument (a tensor built from it would be a copy).
    return drawn.clamp_(max=high - 1) if isinstance(high, int) else torch.minimum(drawn, high - 1)


def _check_batch(batch_size: int) -> None:
    _check_positive("batch_size", batch_size)


class Bundles(ABC):
    """Where a method reads its fiber bundles; one subclass per kind of axis.

    ``prepare`` turns a backbone map ``(B, C, G, H, W)`` into what ``gather`` reads;
    ``pairs`` samples H-SSL pairs (Eq. 7) and ``base`` A-SSL's ``g0`` (Eq. 5) for a prepared
    map, on its device.
    """

    base_size: int
    max_distance: float | None

    @abstractmethod
    def bundle_dim(self, channels: int, group_size: int) -> int:
        """Length of one bundle for a backbone map with ``channels`` x ``group_size`` fibers."""

    @abstractmethod
    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """Backbone map ``(B, C, G, H, W)`` -> what :meth:`gather` reads."""

    @abstractmethod
    def pairs(self, prepared: torch.Tensor, generator: torch.Generator | None = None) -> FiberPairs:
        """H-SSL pairs (Eq. 7), one per sample of a prepared map, on its device."""

    @abstractmethod
    def base(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A-SSL's base ``g0`` (one per sample) for a prepared map, on its device."""

    @abstractmethod
    def gather(self, prepared: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Bundles at ``start`` as ``(B, bundle_dim)`` vectors in the fixed fiber order."""


class _AxisBundles(Bundles):
    """Bundles of ``base_size`` contiguous elements of a 1-D group axis of ``size`` elements.

    The map's spatial axes are average-pooled first (H-SSL App. A: pool space when the
    transformation is not translation). ``emulated``: the axis is the backbone's emulated
    one (:func:`emulate_group_axis`, H-SSL Table 2 baselines) and ``size`` its length.
    """

    cyclic: bool

    def __init__(
        self,
        size: int,
        base_size: int = 1,
        max_distance: int | None = None,
        emulated: bool = False,
    ) -> None:
        _check_max_distance(max_distance)
        self.valid_starts = _valid_starts(size, base_size, "group")
        self.size = size
        self.base_size = base_size
        self.max_distance = max_distance
        self.emulated = emulated
        self._build_sampler()

    @abstractmethod
    def _build_sampler(self) -> None:
        """Precompute what :meth:`sample` draws from (once, when the bundles are built)."""

    @property
    @abstractmethod
    def positions(self) -> int:
        """Number of distinct bundle positions on the axis."""

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: Device = None,
    ) -> FiberPairs:
        """``batch_size`` pairs on ``device``."""
        _check_batch(batch_size)
        return self._draw(batch_size, generator, device)

    @abstractmethod
    def _draw(
        self, batch_size: int, generator: torch.Generator | None, device: Device
    ) -> FiberPairs:
        """:meth:`sample` for a checked ``batch_size``."""

    def pairs(self, prepared: torch.Tensor, generator: torch.Generator | None = None) -> FiberPairs:
        return self.sample(prepared.shape[0], generator=generator, device=prepared.device)

    def bundle_dim(self, channels: int, group_size: int) -> int:
        if self.emulated and group_size == 1:
            channels = channels // self.size
        return self.base_size * channels

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        if self.emulated:
            z = emulate_group_axis(z, self.size)
        return pool_space(z)

    def gather(self, prepared: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return gather_axis(prepared, start, self.base_size, cyclic=self.cyclic)


class CyclicBundles(_AxisBundles):
    """A cyclic axis (C4 rotation: ``size = 4``); bundles wrap around mod ``size``.

    Pairs: ``g0, g1`` uniform; ``g2 = g1 + δ`` with ``δ`` uniform over the residues whose
    cyclic distance ``min(δ, size - δ)`` is at most ``max_distance``.
    """

    cyclic = True

    def _build_sampler(self) -> None:
        size = self.size
        bound = size if self.max_distance is None else self.max_distance
        # The allowed residues are 0..bound and size-bound..size-1: the k-th of them is
        # k, or k + (size - count) past the first run (no lookup table on the device).
        self._residues = sum(1 for r in range(size) if min(r, size - r) <= bound)
        self._first_run = min(bound, size - 1)

    @property
    def positions(self) -> int:
        return self.size

    def _draw(
        self, batch_size: int, generator: torch.Generator | None, device: Device
    ) -> FiberPairs:
        n, size = (batch_size,), self.size
        base = _uniform_below(size, n, generator, device)
        shift1 = _uniform_below(size, n, generator, device)
        pick = _uniform_below(self._residues, n, generator, device)
        residue = torch.where(pick > self._first_run, pick + (size - self._residues), pick)
        shift2 = (shift1 + residue) % size
        return FiberPairs(base, shift1, shift2, (base - shift1) % size, (base - shift2) % size)

    def base(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return _uniform_below(self.size, (prepared.shape[0],), generator, prepared.device)


class _BoxPairs:
    """Uniform pairs of in-range starts ``(s1, s2)`` with ``‖s1 - s2‖_2 <= max_distance``.

    Drawn in two steps: the offset ``δ = s2 - s1`` with probability proportional to the number
    of in-range ``s1`` it allows (``prod_d (M_d - |δ_d|)``, ``M_d`` valid starts per axis), by
    inverse-CDF search on the device, then ``s1`` uniform among those. With no bound this is
    two independent uniform starts. The offset table is built once per device.
    """

    def __init__(self, valid: tuple[int, ...], max_distance: float | None) -> None:
        offsets = torch.tensor(
            list(itertools.product(*(range(-(m - 1), m) for m in valid))), dtype=torch.long
        ).reshape(-1, len(valid))
        counts = (torch.tensor(valid) - offsets.abs()).prod(dim=1).double()
        if max_distance is not None:
            within = offsets.double().pow(2).sum(dim=1) <= float(max_distance) ** 2 + 1e-9
            counts = counts * within
        self.valid = valid
        self._total = float(counts.sum())
        self._last = int(counts.nonzero().max())  # a rounding-up u*total never picks past it
        self._cpu = (offsets, counts.cumsum(0), torch.tensor(valid, dtype=torch.long))
        self._on: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._on:
            self._on[device] = tuple(t.to(device) for t in self._cpu)
        return self._on[device]

    def sample(
        self, batch_size: int, generator: torch.Generator | None, device: Device
    ) -> FiberPairs:
        _check_batch(batch_size)
        offsets, cumulative, m = self._tables(torch.device(device or "cpu"))
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=m.device)
        pick = torch.searchsorted(cumulative, u * self._total, right=True).clamp_(max=self._last)
        delta = offsets[pick]
        low = (-delta).clamp(min=0)
        high = m - delta.clamp(min=0)
        start1 = low + _uniform_below(high - low, tuple(delta.shape), generator, m.device)
        start2 = start1 + delta
        base = _uniform_below(m, tuple(delta.shape), generator, m.device)
        return FiberPairs(base, base - start1, base - start2, start1, start2)

    def base(self, batch_size: int, generator: torch.Generator | None, device: Device):
        m = self._tables(torch.device(device or "cpu"))[2]
        return _uniform_below(m, (batch_size, len(self.valid)), generator, m.device)


class IntervalBundles(_AxisBundles):
    """A non-cyclic axis (SESN scales, an emulated axis); bundles stay inside ``[0, size)``."""

    cyclic = False

    def _build_sampler(self) -> None:
        self._box = _BoxPairs((self.valid_starts,), self.max_distance)

    @property
    def positions(self) -> int:
        return self.valid_starts

    def _draw(
        self, batch_size: int, generator: torch.Generator | None, device: Device
    ) -> FiberPairs:
        pairs = self._box.sample(batch_size, generator, device)
        return FiberPairs(*(t[:, 0] for t in _fields(pairs)))

    def base(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self._box.base(prepared.shape[0], generator, prepared.device)[:, 0]


class GridBundles(Bundles):
    """H-SSL over translation / F-SSL (Eq. 6): ``patch x patch`` patches of the spatial axes.

    A spatial fiber is everything at one pixel (``C * G`` numbers). Patches never leave the
    map (no padding); the Euclidean distance between the two patch corners is at most
    ``max_distance``. Fields of the pairs have shape ``(B, 2)`` as (row, col). The map size
    is only known from the map, so it is validated (and the sampler built) the first time a
    size is seen. ``min_positions``: how many patch positions a map must offer (2 when both
    bundles of a pair come from one map, else they would always be equal); ``source``
    names the map's origin in that error.
    """

    def __init__(
        self,
        patch: int = 1,
        max_distance: float | None = None,
        min_positions: int = 1,
        source: str = "the backbone",
    ) -> None:
        _check_positive("base size", patch)
        _check_max_distance(max_distance)
        self.base_size = patch
        self.max_distance = max_distance
        self.min_positions = min_positions
        self.source = source
        self._boxes: dict[tuple[int, int], _BoxPairs] = {}

    def bundle_dim(self, channels: int, group_size: int) -> int:
        return self.base_size**2 * channels * group_size

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        _check_structured(z)
        return z

    def box(self, height: int, width: int) -> _BoxPairs:
        """The pair sampler for an ``height x width`` map (validated and built once per size)."""
        key = (height, width)
        if key not in self._boxes:
            p = self.base_size
            if max(0, height - p + 1) * max(0, width - p + 1) < self.min_positions:
                raise ValueError(
                    f"translation patches of {p}x{p} on the {height}x{width} feature map of "
                    f"{self.source} leave fewer than {self.min_positions} patch positions; use "
                    "a smaller patch (base_size), a backbone with a larger map, or "
                    "emulate_fibers=True for an unstructured backbone such as 'hssl_mnist_mlp'"
                )
            valid = (_valid_starts(height, p, "height"), _valid_starts(width, p, "width"))
            self._boxes[key] = _BoxPairs(valid, self.max_distance)
        return self._boxes[key]

    def sample(
        self,
        batch_size: int,
        height: int,
        width: int,
        *,
        generator: torch.Generator | None = None,
        device: Device = None,
    ) -> FiberPairs:
        """``batch_size`` pairs of patches of an ``height x width`` map, on ``device``."""
        return self.box(height, width).sample(batch_size, generator, device)

    def pairs(self, prepared: torch.Tensor, generator: torch.Generator | None = None) -> FiberPairs:
        h, w = prepared.shape[-2:]
        return self.sample(prepared.shape[0], h, w, generator=generator, device=prepared.device)

    def base(
        self, prepared: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        h, w = prepared.shape[-2:]
        return self.box(h, w).base(prepared.shape[0], generator, prepared.device)

    def gather(self, prepared: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return gather_patch(prepared, start, self.base_size)


def _fields(pairs: FiberPairs) -> tuple[torch.Tensor, ...]:
    return (pairs.base, pairs.shift1, pairs.shift2, pairs.start1, pairs.start2)


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
    On a non-cyclic axis the starts must lie in ``[0, G - |g0|]``, as the samplers above
    guarantee; they are not checked again here (that would synchronise the GPU each step).
    """
    if z.ndim != 3:
        raise ValueError(f"expected a pooled map (B, C, G), got shape {tuple(z.shape)}")
    b, c, g = z.shape
    _valid_starts(g, base_size, "group")
    index = start.reshape(b, 1).to(z.device) + torch.arange(base_size, device=z.device)
    if cyclic:
        index = index % g
    bundles = z.gather(2, index[:, None, :].expand(b, c, base_size))
    return bundles.transpose(1, 2).reshape(b, base_size * c)


def gather_patch(z: torch.Tensor, start: torch.Tensor, patch: int) -> torch.Tensor:
    """Spatial fiber bundles: ``(B, C, G, H, W)`` and corners ``(B, 2)`` -> ``(B, p*p * C*G)``.

    A spatial fiber is everything at one pixel (``C * G`` numbers); the patch's fibers are
    concatenated in row-major order of the patch. Corners must lie in ``[0, H - p] x
    [0, W - p]`` (no padding), as :class:`GridBundles` guarantees; not checked again here.
    """
    _check_structured(z)
    b, c, g, h, w = z.shape
    _valid_starts(h, patch, "height")
    _valid_starts(w, patch, "width")
    start = start.reshape(b, 2).to(z.device)
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
