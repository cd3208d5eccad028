"""The geometry paper's rank figure as a table: its rows, claims and profiles.

Cosentino et al., "Toward a Geometrical Understanding of Self-supervised Contrastive
Learning", arXiv:2205.06926, Fig. 1: the projector's rank and the accuracy over training for
three augmentation strengths (its Table 2), with the label match and unexplained variance of
its Figs. 6-7 as curves. The paper publishes curves, not numbers.
"""

from __future__ import annotations

from ..claims import Claim, Comparison, Constant, Paper, Quantity
from ..schema import Row, TableSpec
from .profiles import table_profiles

GEOMETRY_PAPER = Paper(
    "Cosentino, Sengupta, Avestimehr, Soltanolkotabi, Ortega, Willke, Tepper",
    "Toward a Geometrical Understanding of Self-supervised Contrastive Learning",
    "2205.06926",
)
GEOMETRY_CITATION = (
    f"{GEOMETRY_PAPER.cite()}, Fig. 1 (projector rank and accuracy over "
    "training, three augmentation strengths of its Table 2), Figs. 6-7 (label match, unexplained "
    "variance). The paper publishes curves, not numbers: no reference values are shown."
)
_RANK_ROWS = tuple(
    Row(
        "CIFAR100", f"{strength} augmentations", "ResNet-18, linear 512→128", f"cifar100_{strength}"
    )
    for strength in ("large", "moderate", "small")
)
_RANK_LOCAL_ROWS = tuple(
    Row(
        "Fashion-MNIST (stand-in for CIFAR100)",
        f"{strength} augmentations",
        "H-SSL MNIST CNN, linear 128→64",
        f"fashion_{strength}",
    )
    for strength in ("large", "moderate", "small")
)

# Adam at 10x the configs' lr: the smallest change under which W moves within a CPU budget
# (local profile description).
_RANK_LR = ("--model.lr=0.01",)
_PROJECTOR_RANK = "final:geometry/projector_effective_rank"
# "Full rank" as a fraction of the embedding dimension under Eq. 2's count.
ENCODER_FULL_RANK_FRACTION = 0.95
RANK_CLAIMS = (
    Claim(
        GEOMETRY_PAPER,
        "Geometry paper Sec. 4, Fig. 1: the projector's rank falls as augmentation strength grows",
        "In particular, the stronger the augmentations, the lower the rank of the projector "
        "weights.",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", _PROJECTOR_RANK, "small augmentations"),
                Quantity("SimCLR", _PROJECTOR_RANK, "moderate augmentations"),
            ),
            Comparison(
                "greater",
                Quantity("SimCLR", _PROJECTOR_RANK, "moderate augmentations"),
                Quantity("SimCLR", _PROJECTOR_RANK, "large augmentations"),
            ),
        ),
        encoding=(
            "'rank' read as the effective rank of W (exp of its spectrum's entropy): Eq. 2's "
            "count Rank_τ needs a τ the paper does not give."
        ),
    ),
    Claim(
        GEOMETRY_PAPER,
        "Geometry paper App. E, Fig. 9: the encoder's representation is full rank at the end "
        "of training",
        "In these three settings, the calculation of the rank following Eq. 2, leads to "
        "Rank_τ[h^(1)(x_1), …, h^(1)(x_N)] = 512, that is, the representation induced by the "
        "encoder is full rank (and close to full rank at the initialization) until the end of "
        "the training as for the case where the input data are not transformed, in Fig. 4.",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", "final:geometry/embedding_rank_fraction"),
                Constant(ENCODER_FULL_RANK_FRACTION),
            ),
        ),
        encoding=(
            f"full rank read as at least {ENCODER_FULL_RANK_FRACTION:.0%} of the embedding "
            "dimension under Eq. 2's count (the rank's fraction of its maximum, last epoch)."
        ),
    ),
)

RANK_TABLE = TableSpec(
    name="rank",
    title="Geometry paper Fig. 1: projector rank and accuracy vs augmentation strength",
    methods=("SimCLR",),
    method_prefix={"SimCLR": "geometry"},
    rows=_RANK_ROWS,
    reference={},
    citation=GEOMETRY_CITATION,
    curves=(
        "probe/acc",
        "geometry/projector_rank",
        "geometry/projector_effective_rank",
        "geometry/embedding_rank_fraction",
        "geometry/label_match",
        "geometry/label_match_coarse",
        "geometry/fvu",
    ),
    profiles=table_profiles(
        local_overrides=(
            "--trainer.max_epochs=15",
            "--data.batch_size=128",
            "--data.max_train_samples=4000",
            "--data.max_eval_samples=2000",
            *_RANK_LR,
        ),
        local_text=(
            ", SimCLR with a linear projector on Fashion-MNIST (experiments/"
            "geometry_fashion_*.yaml; here 15 Adam epochs at lr 1e-2 on 4,000 images, batch 128, "
            "465 steps, on CPU) standing in for the paper's 500-epoch ResNet-18 CIFAR-100 runs. "
            "The configs' own lr 1e-3 leaves W at its initialisation over this budget (measured: "
            "singular values 0.17-1.0, as a fresh init's 0.18-0.96); at lr 1e-2 W learns. The "
            "projector's rank is judged by its effective rank (see RANK_CLAIMS)."
        ),
        gpu_overrides=(
            "--trainer.max_epochs=15",
            "--data.batch_size=512",
            "--data.max_train_samples=null",
            "--data.max_eval_samples=null",
            *_RANK_LR,
        ),
        gpu_text=(
            ", 15 Adam epochs at lr 1e-2 on all 60,000 Fashion-MNIST images, batch 512, bf16 on "
            "one GPU (its time estimate and basis: docs/reproduce.md)."
        ),
        paper_text=(
            "5 seeds, ResNet-18, linear 512→128 projector, LARS lr 4.0, CIFAR-100, 500 epochs "
            "(geometry paper Sec. 2)."
        ),
        # The paper's figures average 5 runs (its Figs. 3 and 7).
        paper_seeds=(0, 1, 2, 3, 4),
        rows=_RANK_LOCAL_ROWS,
    ),
    claims=RANK_CLAIMS,
)
