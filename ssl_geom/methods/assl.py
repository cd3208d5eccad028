"""A-SSL as the H-SSL paper runs it (Eq. 5, App. A "Empirical Validation").

Two group-transformed views of each image (the DataModule's ``train_views`` set to
``"rotation"``, ``"translation"`` or ``"scale"``: multiples of 90°, ±20 % shifts,
downscaling to 0.57-1.0), one backbone pass per view, and the *same* randomly chosen
base ``g0`` read from both maps: one fiber per sample (``|g0| = 1`` in Table 1) on the
rotation/scale axis after spatial average-pooling, or the same pixel location for
translation. For an equivariant backbone this is Eq. 7 with ``g1, g2`` the sampled input
transformations, which the tests check exactly.

Unlike H-SSL it needs no equivariance: the input is really transformed, so A-SSL runs on
any backbone (Table 2's unstructured ones included).

The online classifier reads the *un-augmented* image (the DataModule's
``include_original=True`` appends it as the last view), like H-SSL's, Frozen's and
Supervised's in the same table: otherwise the A-SSL column's accuracy would be measured
on rotated / shifted / downscaled inputs and the H-SSL column's on clean ones. That map
is computed without gradients (it trains nothing but the probe); its BatchNorm batch
statistics still update the running statistics, as the originals do in CARE.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ssl_geom.methods.hssl import FiberSSL, checked_transformation
from ssl_geom.protocols import ProvidesIncludeOriginal, ProvidesTrainViews, attached_datamodule
from ssl_geom.symmetry import SYMMETRIES, Symmetry, SymmetryName


class ASSL(FiberSSL):
    """A-SSL (Eq. 5): InfoNCE between the bundles at the same ``g0`` of two transformed views.

    Args:
        transformation: the :class:`~ssl_geom.symmetry.Symmetry` (or its string) of the
            axis ``g0`` lives on: ``"rotation"``/``"scale"`` (the group axis, spatially
            pooled) or ``"translation"`` (a spatial patch). Match it to the
            DataModule's ``train_views``.
        base_size: ``|g0|`` (the patch side for translation); App. A uses 1.
        emulate_fibers: read ``g0`` on the emulated axis of an unstructured backbone (Table 2).
        **kwargs: :class:`~ssl_geom.methods.hssl.FiberSSL` arguments (``temperature``,
            ``gather_distributed``) and :class:`~ssl_geom.methods.base.SSLMethod` ones.
    """

    one_view: ClassVar[bool] = False

    def __init__(
        self,
        # A string default: jsonargparse would print a member default by its name (ROTATION).
        transformation: Symmetry | SymmetryName = "rotation",
        base_size: int = 1,
        emulate_fibers: bool = False,
        **kwargs: Any,
    ) -> None:
        transformation = checked_transformation(transformation)  # saved as a hyper-parameter
        super().__init__(**kwargs)
        self.build_bundles(transformation, base_size, None, emulate_fibers)

    def setup(self, stage: str) -> None:
        """Refuse a DataModule whose views do not transform the axis ``g0`` is read on.

        A-SSL with rotated inputs but ``g0`` on the scale axis trains without error and
        reports a meaningless number, so the mismatch is caught before the first step.
        SimCLR views (``train_views="simclr"``) are allowed: a deliberate other augmentation.
        """
        dm = attached_datamodule(self.trainer)
        if (
            stage == "fit"
            and isinstance(dm, ProvidesIncludeOriginal)
            and dm.include_original is False
        ):
            raise ValueError(
                f"A-SSL's classifier reads the un-augmented image, but {type(dm).__name__} has "
                "include_original=False; set data.init_args.include_original: true"
            )
        views = dm.train_views if isinstance(dm, ProvidesTrainViews) else None
        transformation = self.hparams.transformation
        if stage != "fit" or views is None or views == transformation or views == "simclr":
            return
        fix = f"set the data's train_views={transformation!r}"
        if views in SYMMETRIES:
            fix += f" (or the model's transformation={views!r})"
        raise ValueError(
            f"A-SSL reads g0 on the {transformation!r} axis of two transformed views, but the "
            f"DataModule has train_views={views!r}; {fix}"
        )

    def bundle_pair(
        self, views: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A-SSL's positive pair (Eq. 5): the bundle at one random ``g0`` of each view.

        ``views``: two transformed views and the un-augmented original last. Returns both
        ``(B, bundle_dim)`` bundles and the original's map (for the probe).
        """
        if len(views) < 3:
            raise ValueError(
                f"A-SSL needs two transformed views and the un-augmented original last, got "
                f"{len(views)} views; configure the DataModule with train_views='rotation', "
                "'translation' or 'scale' and include_original=True"
            )
        z1, z2 = self.backbone(views[0]), self.backbone(views[1])
        with torch.no_grad():
            original = self.backbone(views[-1])
        prepared1, prepared2 = self.bundles.prepare(z1), self.bundles.prepare(z2)
        base = self.bundles.base(prepared1, self.draw_generator(prepared1.device))
        return (
            self.bundles.gather(prepared1, base),
            self.bundles.gather(prepared2, base),
            original,
        )
