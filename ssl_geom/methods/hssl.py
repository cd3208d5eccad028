"""H-SSL: homomorphic self-supervised learning (H-SSL paper Sec. 3, Eq. 7).

No input augmentation: one forward pass of one un-augmented view, and the positive pair
of sample ``n`` is two fiber bundles of *its own* representation, ``z_n(g1^-1 · g0)`` and
``z_n(g2^-1 · g0)``, contrasted with InfoNCE (Eq. 3) after the projection head. For an
equivariant backbone this equals A-SSL with the input transformed by ``g1`` and ``g2``
(Eq. 5), which is why the group axis must carry real structure; H-SSL on an axis without
it is the paper's Table 2 failure case, available only on purpose (``emulate_fibers``).

Which axis (``transformation``, a :class:`~ssl_geom.symmetry.Symmetry` or its string):

- ``"rotation"``: the C4 group axis of a rotation backbone (cyclic);
- ``"scale"``: the scale axis of a SESN backbone (non-cyclic: bundles stay inside);
- ``"translation"``: the spatial axes of any backbone (``|g0|`` = a ``p x p`` patch;
  F-SSL, Eq. 6, is this case).

Rotation and scale average-pool the spatial axes first (App. A), so the projection head
reads ``C * |g0|`` numbers; translation reads ``p * p * C * G``. The head's input grows
with ``|g0|`` as in Sec. 4.3.

The DataModule must yield one un-augmented view: ``train_views: none``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ssl_geom.backbones import StructuredBackbone
from ssl_geom.losses import info_nce
from ssl_geom.losses.fibers import (
    Bundles,
    CyclicBundles,
    GridBundles,
    IntervalBundles,
)
from ssl_geom.methods.base import SSLMethod, SSLStepOutput
from ssl_geom.symmetry import Symmetry, SymmetryName, parse_symmetry

_EXAMPLE_BACKBONE = {Symmetry.ROTATION: "hssl_mnist_rotation", Symmetry.SCALE: "hssl_mnist_scale"}


def checked_transformation(transformation: Symmetry | str) -> SymmetryName:
    """``transformation`` validated (:func:`~ssl_geom.symmetry.parse_symmetry`), as plain text.

    Plain text because it is a hyper-parameter: checkpoints are read back with
    ``torch.load(weights_only=True)``, which refuses any class it does not know, an enum
    member included.
    """
    return parse_symmetry(transformation, "transformation").value


def resolve_bundles(
    backbone: StructuredBackbone,
    backbone_name: str,
    transformation: Symmetry | str,
    base_size: int,
    max_distance: float | None,
    emulate_fibers: bool,
    one_view: bool,
) -> Bundles:
    """The :class:`Bundles` a fiber method reads from ``backbone``, or a clear refusal.

    ``one_view`` (H-SSL, F-SSL): both bundles of a pair come from one representation, so
    a rotation/scale axis must be equivariant to that transformation (else Eq. 7 does not
    follow from Eq. 5) and must offer at least two bundle positions. A-SSL transforms the
    input and needs neither.
    """
    transformation = parse_symmetry(transformation, "transformation")
    group = parse_symmetry(backbone.group, f"backbone {backbone_name!r} group")
    g = backbone.group_size
    described = f"backbone {backbone_name!r} (group {group.value!r}, G={g})"
    if transformation == Symmetry.TRANSLATION and not emulate_fibers:
        return GridBundles(
            base_size, max_distance, 2 if one_view else 1, f"backbone {backbone_name!r}"
        )
    if emulate_fibers:
        if group != Symmetry.TRANSLATION:
            raise ValueError(
                f"emulate_fibers=True is for backbones without structure (H-SSL Table 2), but "
                f"{described} has a real group axis; set emulate_fibers=False"
            )
        if backbone.emulated_group_size is None:
            raise ValueError(
                f"emulate_fibers=True needs a backbone with an emulated group axis, but "
                f"{described} has emulated_group_size=None; use e.g. 'hssl_mnist_mlp', "
                "'hssl_mnist_cnn6x' or 'hssl_resnet20_cnn6x'"
            )
        size = backbone.emulated_group_size
    else:
        if one_view and group != transformation:
            raise ValueError(
                f"H-SSL over {transformation.value!r} reads fibers of a {transformation}-equivariant "
                f"group axis, but {described} is not {transformation}-equivariant. Fix: use a "
                f"{transformation} backbone such as {_EXAMPLE_BACKBONE[transformation]!r} "
                "(or its hssl_resnet20_* / hssl_resnet20_tin_* counterpart), pick "
                f"transformation={group.value!r}, or set emulate_fibers=True to sample an "
                "unstructured axis on purpose (H-SSL Table 2)"
            )
        size = g
    if base_size > size:
        raise ValueError(
            f"base_size={base_size} exceeds the {transformation} axis of {described}, which "
            f"has {size} elements; use base_size <= {size}"
        )
    kind = CyclicBundles if transformation == Symmetry.ROTATION else IntervalBundles
    distance = None if max_distance is None else int(max_distance)
    bundles = kind(size, base_size, distance, emulated=emulate_fibers)
    if one_view and bundles.positions < 2:
        raise ValueError(
            f"base_size={base_size} on the {size}-element {transformation} axis of {described} "
            "leaves a single bundle position, so both bundles of every pair would be equal; "
            "use a smaller base_size or a backbone with a larger group axis"
        )
    return bundles


class FiberSSL(SSLMethod):
    """Shared by H-SSL, F-SSL and A-SSL: fiber bundles into the projector, InfoNCE between them.

    A subclass calls :meth:`build_bundles` right after ``super().__init__``: it resolves
    where the bundles are read (:func:`resolve_bundles`) and builds the projector for
    their length. :meth:`bundle_pair` here is H-SSL's (Eq. 7: both bundles from one view);
    A-SSL overrides it.

    Args:
        temperature: InfoNCE temperature ``τ`` (App. A: 0.1).
        gather_distributed: contrast against the negatives of every process under DDP.
        **kwargs: :class:`~ssl_geom.methods.base.SSLMethod` arguments.
    """

    one_view: ClassVar[bool] = True
    """Both bundles come from one view (H-SSL/F-SSL); see :func:`resolve_bundles`."""

    def __init__(
        self, temperature: float = 0.1, gather_distributed: bool = False, **kwargs: Any
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(**kwargs)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def build_bundles(
        self,
        transformation: Symmetry | str,
        base_size: int,
        max_distance: float | None,
        emulate_fibers: bool,
    ) -> None:
        """Set ``self.bundles`` and ``self.projector`` (input: one bundle, ``C * |g0|`` on the
        group axis, ``p * p * C * G`` for translation patches)."""
        self.bundles = resolve_bundles(
            self.backbone,
            self.hparams.backbone,
            transformation,
            base_size,
            max_distance,
            emulate_fibers,
            one_view=self.one_view,
        )
        self.projector = self.make_projector(
            self.bundles.bundle_dim(self.backbone.out_channels, self.backbone.group_size)
        )

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        """InfoNCE (Eq. 3) between the projected bundles of the pair."""
        bundle1, bundle2, z = self.bundle_pair(views)
        loss = info_nce(
            self.projector(bundle1),
            self.projector(bundle2),
            self.temperature,
            gather_distributed=self.gather_distributed,
        )
        return SSLStepOutput(loss=loss, probe_features=z)

    def bundle_pair(
        self, views: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """H-SSL's positive pair (Eq. 7): ``z(g1^-1 · g0)``, ``z(g2^-1 · g0)`` of one view.

        Returns both ``(B, bundle_dim)`` bundles and the backbone map (for the probe).
        """
        if len(views) != 1:
            raise ValueError(
                f"{type(self).__name__} reads both bundles from one un-augmented view (Eq. 7), "
                f"got {len(views)} views; configure the DataModule with train_views='none' "
                "and include_original=False"
            )
        z = self.backbone(views[0])
        prepared = self.bundles.prepare(z)
        pairs = self.bundles.pairs(prepared, self.draw_generator(prepared.device))
        return (
            self.bundles.gather(prepared, pairs.start1),
            self.bundles.gather(prepared, pairs.start2),
            z,
        )


class HSSL(FiberSSL):
    """H-SSL (Eq. 7): InfoNCE between two fiber bundles of one representation.

    Args:
        transformation: the :class:`~ssl_geom.symmetry.Symmetry` (or its string,
            ``"rotation"``, ``"scale"``, ``"translation"``) whose fibers pair up (module doc).
        base_size: ``|g0|``: contiguous group elements per bundle, or the patch side for
            translation (paper Table 1: 1).
        max_distance: maximum topographic distance between ``g1`` and ``g2`` (Sec. 4.3):
            group elements on the rotation/scale axis, feature-map pixels (Euclidean) for
            translation; ``None`` samples the two bundles independently (App. A).
        emulate_fibers: sample an *emulated* group axis of an unstructured backbone (the
            Table 2 baselines: ``hssl_mnist_mlp``, ``*_cnn6x``).
        **kwargs: :class:`FiberSSL` arguments (``temperature``, ``gather_distributed``) and
            :class:`~ssl_geom.methods.base.SSLMethod` ones (backbone, projector, optimizer, ...).
    """

    def __init__(
        self,
        # A string default: jsonargparse would print a member default by its name (ROTATION).
        transformation: Symmetry | SymmetryName = "rotation",
        base_size: int = 1,
        max_distance: float | None = None,
        emulate_fibers: bool = False,
        **kwargs: Any,
    ) -> None:
        transformation = checked_transformation(transformation)  # saved as a hyper-parameter
        super().__init__(**kwargs)
        self.build_bundles(transformation, base_size, max_distance, emulate_fibers)
