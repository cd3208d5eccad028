"""CARE (Gupta et al.): Contrastive Augmentation-induced Rotational Equivariance.

``L_CARE = w_nce·InfoNCE + λ·L_equi`` (CARE paper Sec. 3; Algorithm 1 in App. D), on a
SimCLR (``base="simclr"``) or MoCo-v2 (``base="moco"``) contrastive term. The
equivariance term asks one augmentation pair ``(ã1, ã2)`` to act on a group of embeddings
by the *same* orthogonal map: it compares the Gram matrices of ``f(ã1(c))`` and
``f(ã2(c))`` for a chunk ``c`` of images (``ssl_geom.losses.orthogonal_equivariance_loss``).

How the equivariance views are made (Algorithm 1, lines 6-13): the batch's
*un-augmented originals* (the last view; the DataModule needs ``include_original=True``)
are split into ``n_split`` chunks and each chunk gets a fresh pair drawn by a batched
same-parameters transform, so one step draws ``n_split`` pairs. CARE receives it as
``same_params_transform``: the DataModule's :class:`~ssl_geom.augment.Augmentation`
(``datamodule.augmentation``; the CLI links it) or any ``t(batch)`` drawing one set of
parameters per call. The authors' public code instead draws one pair for the whole batch;
``shared_pair_across_chunks=True`` reproduces that (one pair per process under DDP).

The chunks are chunks of the *global* batch, at every world size: a chunk holds
``batch_size / n_split`` originals whether the run has 1 process or 64, as in Algorithm 1
and the authors' CIFAR code, which split the whole batch. Each of the ``world_size``
processes holds ``n_split / world_size`` whole chunks (a world size that does not divide
``n_split`` is refused in ``setup``, naming the fix), computes ``L_equi`` on them and logs
their mean; every process holds as many chunks, so the mean over processes, and the gradient
DDP averages, are those of the mean over all ``n_split`` chunks. Each chunk's pair is drawn
by the process that holds it: rank 0 from the transform's own source, every other rank from
one seeded by the run's seed, its rank and the step (:mod:`ssl_geom.rank_draws`).

Two settings of the authors' ImageNet-100 code (github.com/Sharut/CARE, commit 28718be,
``imagenet100/main.py``), where the paper is silent: ``equivariance_batch_size`` computes
``L_equi`` on the first originals of the batch only (their ``--equivariant-batch-size 128``,
``images[2][:128 / world_size]``), and ``equivariance_views`` picks which of the augmentation's
same-parameters transforms makes the pair (``"photometric_flip"``: their ``input_transforms``,
no crop).

Ablations (paper Fig. 7): ``info_nce_weight``, ``invariance_weight`` (``L_inv``),
``uniformity_weight`` (``L_unif``) and ``equivariance_weight`` (``λ``) switch the terms on
(> 0) or off (0); e.g. ``L_equi + L_unif`` is ``info_nce_weight=0, uniformity_weight=1,
equivariance_weight=1``. ``L_inv`` and ``L_unif`` act on the normalised online
projections of the two augmented views (``L_unif`` averaged over the two views, as in
Wang & Isola). Each active term is logged as ``train/<term>``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from ssl_geom.augment import PAIR_KINDS, Augmentation, PairKind, SameParams, as_same_params
from ssl_geom.augment.same_params import Transform
from ssl_geom.losses import (
    info_nce,
    invariance_loss,
    orthogonal_equivariance_loss,
    uniformity_loss,
)
from ssl_geom.methods.base import SSLMethod, SSLStepOutput
from ssl_geom.methods.moco import MomentumQueue
from ssl_geom.protocols import ProvidesIncludeOriginal, attached_datamodule

CAREBase = Literal["simclr", "moco"]
BASES: tuple[str, ...] = ("simclr", "moco")


class CARE(SSLMethod):
    """CARE on a SimCLR or MoCo-v2 base; base arguments pass through ``kwargs``.

    Args:
        base: contrastive term: ``"simclr"`` (InfoNCE over the batch) or ``"moco"``
            (momentum encoder + queue; ``queue_size``, ``ema_momentum``, ``symmetric``,
            ``shuffle_bn``, ``bn_splits`` as in :class:`~ssl_geom.methods.moco.MoCoV2`,
            the same :class:`~ssl_geom.methods.moco.MomentumQueue`).
        temperature: contrastive temperature (0.5 SimCLR, 0.1 MoCo-v2 on CIFAR, 0.2 on
            ImageNet-100).
        gather_distributed: SimCLR base: negatives from all processes under DDP.
        equivariance_weight: ``λ`` (0.01 CIFAR-10 / STL10, 0.001 CIFAR-100; 0.005 SimCLR
            and 0.01 MoCo on ImageNet-100).
        n_split: chunks of the global batch for the equivariance term (16 / 4 / 8 for
            CIFAR-10 / CIFAR-100 / STL10), each of ``batch_size / n_split`` originals at any
            world size; must divide the batch size, and the world size must divide it.
        shared_pair_across_chunks: one augmentation pair for all chunks (public code)
            instead of one per chunk (paper).
        equivariance_batch_size: originals of the *global* batch (like ``data.batch_size``)
            that ``L_equi`` uses: each process takes the first ``equivariance_batch_size /
            world_size`` of its batch; ``None`` = all. ``n_split`` then chunks this global
            count (and must divide it) instead of the batch size.
        equivariance_views: which of the augmentation's same-parameters transforms
            (:meth:`~ssl_geom.augment.Augmentation.same_params`) makes the pair: ``"simclr"``
            (the train views' augmentations, Algorithm 1), ``"photometric"`` (no crop, no
            flip) or ``"photometric_flip"`` (no crop), or an H-SSL group name.
        info_nce_weight / invariance_weight / uniformity_weight: ablation weights (Fig. 7).
        same_params_transform: what draws the equivariance pairs, required to train with
            ``equivariance_weight > 0``: the DataModule's
            :class:`~ssl_geom.augment.Augmentation` (``datamodule.augmentation``, linked by
            the CLI), or a batched transform ``t(batch) -> batch`` drawing one set of
            parameters per call (only with ``equivariance_views="simclr"``). The name is the
            CLI's link target and part of every run's recorded config, hence not
            ``augmentation``.
    """

    hparams_ignore: ClassVar[tuple[str, ...]] = ("same_params_transform",)

    def __init__(
        self,
        base: CAREBase = "simclr",
        temperature: float = 0.5,
        gather_distributed: bool = True,
        equivariance_weight: float = 0.01,
        n_split: int = 16,
        shared_pair_across_chunks: bool = False,
        info_nce_weight: float = 1.0,
        invariance_weight: float = 0.0,
        uniformity_weight: float = 0.0,
        queue_size: int = 65536,
        ema_momentum: float = 0.999,
        symmetric: bool = False,
        shuffle_bn: bool = True,
        bn_splits: int = 8,
        equivariance_batch_size: int | None = None,
        equivariance_views: PairKind = "simclr",
        same_params_transform: Augmentation | Transform | None = None,
        **kwargs: Any,
    ) -> None:
        if base not in BASES:
            raise ValueError(f"unknown CARE base {base!r}; valid choices: {', '.join(BASES)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if n_split < 1:
            raise ValueError(f"n_split must be >= 1, got {n_split}")
        if equivariance_batch_size is not None and (
            equivariance_batch_size < 1 or equivariance_batch_size % n_split
        ):
            raise ValueError(
                f"equivariance_batch_size={equivariance_batch_size} must be a positive multiple "
                f"of n_split={n_split} (each chunk of the equivariance batch shares one pair); "
                f"use e.g. {n_split * max(1, (equivariance_batch_size or 0) // n_split)}, or None "
                "for the whole batch"
            )
        if equivariance_views not in PAIR_KINDS:
            raise ValueError(
                f"unknown equivariance_views {equivariance_views!r}; expected one of "
                f"{list(PAIR_KINDS)}"
            )
        plain_transform = same_params_transform is not None and not isinstance(
            same_params_transform, Augmentation
        )
        if plain_transform and equivariance_views != "simclr":
            raise ValueError(
                f"equivariance_views={equivariance_views!r} picks one of an Augmentation's "
                "pairs, but same_params_transform is a plain transform, which has only its own; "
                "pass the DataModule's augmentation (datamodule.augmentation) or leave "
                "equivariance_views='simclr'"
            )
        weights = {
            "info_nce_weight": info_nce_weight,
            "invariance_weight": invariance_weight,
            "uniformity_weight": uniformity_weight,
            "equivariance_weight": equivariance_weight,
        }
        for name, value in weights.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (0 switches the term off), got {value}")
        if not any(weights.values()):
            raise ValueError(f"all CARE loss weights are 0 ({weights}); switch at least one on")
        super().__init__(**kwargs)
        self.projector = self.make_projector(self.backbone.embed_dim)
        batch = self.hparams.batch_size
        if equivariance_batch_size is not None and batch is not None:
            if equivariance_batch_size > batch:
                raise ValueError(
                    f"equivariance_batch_size={equivariance_batch_size} exceeds the batch size "
                    f"{batch}; use at most {batch}, or None for the whole batch"
                )
            batch = equivariance_batch_size
        self._check_n_split(batch)
        self._same_params: SameParams | None = None
        if isinstance(same_params_transform, Augmentation):
            self._same_params = same_params_transform.same_params(equivariance_views)
        elif same_params_transform is not None:
            self._same_params = as_same_params(same_params_transform)
        self.momentum_encoder: MomentumQueue | None = None
        if base == "moco" and info_nce_weight > 0:
            self.momentum_encoder = MomentumQueue.of(self)

    @property
    def uses_equivariance(self) -> bool:
        return self.hparams.equivariance_weight > 0

    def _check_n_split(self, batch_size: int | None) -> None:
        n_split = self.hparams.n_split
        if batch_size is not None and batch_size % n_split != 0:
            raise ValueError(
                f"CARE n_split={n_split} must divide the batch size {batch_size} (the global "
                "batch: each of its n_split chunks shares one augmentation pair); pick a "
                "divisor of the batch size"
            )

    def _world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def local_chunks(self) -> int:
        """The chunks this process holds: ``n_split / world_size``, all of the same size.

        A chunk is ``1 / n_split`` of the global (equivariance) batch at every world size, so
        a world size that cannot give every process whole chunks is refused.
        """
        n_split, world = self.hparams.n_split, self._world_size()
        if n_split % world:
            divisors = [d for d in range(1, n_split + 1) if n_split % d == 0]
            raise ValueError(
                f"CARE n_split={n_split} chunks of the global batch cannot be shared by "
                f"world_size={world} processes (devices x num_nodes): every process must hold "
                f"whole chunks, n_split / world_size of them. Train on a number of processes "
                f"that divides {n_split} ({', '.join(map(str, divisors))}), or set n_split to a "
                f"multiple of {world} (smaller chunks, so another equivariance objective)"
            )
        return n_split // world

    def equivariance_rows(self, n: int) -> int:
        """How many of a process's ``n`` originals ``L_equi`` uses (the first ones)."""
        total = self.hparams.equivariance_batch_size
        if total is None:
            return n
        world = self._world_size()
        self.local_chunks()  # whole chunks per process; then world divides total too
        rows = total // world
        if rows > n:
            raise ValueError(
                f"equivariance_batch_size={total} needs {rows} originals per process, but the "
                f"batch has {n}; lower equivariance_batch_size or raise data.batch_size"
            )
        return rows

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.momentum_encoder is not None and self.trainer.world_size == 1:
            self.momentum_encoder.check_batch_size(self.per_process_batch_size())
        if stage != "fit" or not self.uses_equivariance:
            return
        self.local_chunks()
        per_process = self.per_process_batch_size()
        if self.hparams.equivariance_batch_size is None:
            self._check_n_split(self.global_batch_size())
        elif per_process is not None:
            self.equivariance_rows(per_process)
        dm = attached_datamodule(self.trainer)
        if isinstance(dm, ProvidesIncludeOriginal) and dm.include_original is False:
            raise ValueError(
                f"CARE builds its equivariance views from the un-augmented images, but "
                f"{type(dm).__name__} has include_original=False; set "
                "data.init_args.include_original: true"
            )
        self._pair_transform()

    def _pair_transform(self) -> SameParams:
        """The same-parameters transform of the pairs; a clear error when none was passed."""
        if self._same_params is None:
            raise ValueError(
                "CARE with equivariance_weight > 0 needs an augmentation to draw its "
                "equivariance pairs, and none was passed: use "
                "CARE(..., same_params_transform=datamodule.augmentation) with an ssl_geom "
                "DataModule (the CLI links data.augmentation itself), or pass a batched "
                "transform t(batch) -> batch drawing one set of parameters per call"
            )
        return self._same_params

    # ------------------------------------------------------------------ views
    def equivariance_views(self, originals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ã1(x), ã2(x))`` with one pair per chunk (or one for all chunks when shared).

        ``originals`` are this process's; it holds :meth:`local_chunks` chunks of them.
        """
        t = self._pair_transform()
        n, chunks = originals.shape[0], self.local_chunks()
        if n % chunks != 0:
            raise ValueError(
                f"CARE's {chunks} chunks per process (n_split={self.hparams.n_split} over "
                f"{self._world_size()} processes) must divide the process's batch of {n}; "
                "pick a divisor or drop incomplete batches (drop_last=True)"
            )
        groups = 1 if self.hparams.shared_pair_across_chunks else chunks
        with torch.no_grad():
            return t.pair(originals, groups, seed=self.draw_seed())

    # ------------------------------------------------------------------ loss
    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        hp = self.hparams
        needed = 3 if self.uses_equivariance else 2
        if len(views) < needed:
            raise ValueError(
                f"CARE got {len(views)} views per sample, needs two augmented views"
                + (
                    " plus the un-augmented original last (include_original=True)"
                    if needed == 3
                    else ""
                )
            )
        if self.momentum_encoder is not None:
            self.momentum_encoder.update(self.backbone, self.projector)
        map1, z1 = self.project(views[0])
        _, z2 = self.project(views[1])
        terms: dict[str, torch.Tensor] = {}
        if hp.info_nce_weight > 0:
            if self.momentum_encoder is not None:
                terms["info_nce"] = self.momentum_encoder.loss(z1, z2, views[0], views[1])
            else:
                terms["info_nce"] = info_nce(
                    z1, z2, temperature=hp.temperature, gather_distributed=hp.gather_distributed
                )
        n1, n2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        if hp.invariance_weight > 0:
            terms["invariance"] = invariance_loss(n1, n2)
        if hp.uniformity_weight > 0:
            terms["uniformity"] = 0.5 * (uniformity_loss(n1) + uniformity_loss(n2))
        if self.uses_equivariance:
            originals = views[-1]
            x1, x2 = self.equivariance_views(originals[: self.equivariance_rows(len(originals))])
            e1 = F.normalize(self.project(x1)[1], dim=1)
            e2 = F.normalize(self.project(x2)[1], dim=1)
            terms["equivariance"] = orthogonal_equivariance_loss(
                e1, e2, n_split=self.local_chunks()
            )
        weight = {
            "info_nce": hp.info_nce_weight,
            "invariance": hp.invariance_weight,
            "uniformity": hp.uniformity_weight,
            "equivariance": hp.equivariance_weight,
        }
        loss = sum(weight[name] * value for name, value in terms.items())
        return SSLStepOutput(loss, map1, {k: v.detach() for k, v in terms.items()})

    # ------------------------------------------------------------------ checkpoints
    def on_fit_start(self) -> None:
        if self.momentum_encoder is not None:
            self.momentum_encoder.refuse_synchronised_batch_norm()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also save the pair transform's own random source (a resumed run draws on from it)."""
        super().on_save_checkpoint(checkpoint)
        if self._same_params is not None:
            checkpoint["care_pair_draws"] = self._same_params.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self._same_params is not None and "care_pair_draws" in checkpoint:
            self._same_params.load_state_dict(checkpoint["care_pair_draws"])
