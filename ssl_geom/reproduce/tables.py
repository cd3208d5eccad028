"""The grids behind each reproduced table, and the papers' published numbers.

A table is rows (dataset x transformation x backbone) times method columns
times seeds; each cell is one experiment config from ``experiments/`` plus the
profile's overrides. The published numbers are reference data, quoted from the
papers in ``shared/papers`` and cited in each table's ``citation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
# Where a table shows the linear evaluation of its pretrained runs (reproduce/evaluation.py):
# nowhere, as its cells (CARE), or in a labelled table beside the online probe (H-SSL).
LinearEvalMode = Literal["none", "headline", "beside"]


@dataclass(frozen=True)
class Row:
    """One table row: what the paper prints, and how our configs name it."""

    dataset: str  # printed name, e.g. "MNIST"
    transformation: str  # printed name, e.g. "Rotation"
    backbone: str  # printed name, e.g. "Rot-Eq."
    config_stem: str  # e.g. "mnist_rotation": configs are <method>_<stem>.yaml

    @property
    def key(self) -> str:
        return self.config_stem

    def labels(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "transformation": self.transformation,
            "backbone": self.backbone,
        }


@dataclass(frozen=True)
class Profile:
    """A budget: which seeds, which overrides, which rows stand in for which."""

    name: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    description: str
    # Rows whose dataset is replaced (e.g. Fashion-MNIST for MNIST), and the
    # overrides that make the swap; the printed dataset name gets ``label``.
    substitutes: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # Rows run instead of the table's own (e.g. a Fashion-MNIST row for CPU runs).
    rows: tuple[Row, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    methods: tuple[str, ...]  # column names as printed
    method_prefix: dict[str, str]  # column -> config file prefix
    rows: tuple[Row, ...]
    reference: dict[tuple[str, str], tuple[float, float | None]]  # (row key, method)
    citation: str
    profiles: dict[str, Profile]
    # The test-time metric a cell reports (x100): the detached linear probe on the test split.
    metric: str = "probe/test_acc"
    # Validation metrics drawn over training (one panel each) and summarised at the end.
    curves: tuple[str, ...] = ()
    experiments_dir: Path = EXPERIMENTS_DIR
    linear_eval: LinearEvalMode = "none"

    def config_path(self, row: Row, method: str) -> Path:
        return self.experiments_dir / f"{self.method_prefix[method]}_{row.config_stem}.yaml"


HSSL_CITATION = (
    "Keller, Suau, Zappella, Apostoloff: Homomorphic Self-Supervised Learning "
    "(shared/papers/homomorphic_ssl.md), Tables 1-2: top-1 test accuracy of a detached "
    "linear classifier, mean ± std over 3 runs."
)
CARE_CITATION = (
    "Gupta, Robinson, Lim, Villar, Jegelka: Structuring Representation Geometry with "
    "Rotationally Equivariant Contrastive Learning (shared/papers/care_full.md), Table 1: "
    "top-1 linear-probe accuracy, mean over 3 classifier initialisations (no std published)."
)

_HSSL_METHODS = ("A-SSL", "H-SSL", "Frozen", "Supervised")
_HSSL_PREFIX = {"A-SSL": "assl", "H-SSL": "hssl", "Frozen": "frozen", "Supervised": "supervised"}

# Local budget shared by the H-SSL tables: a few epochs on a subset, on CPU.
_HSSL_LOCAL = (
    "--trainer.max_epochs=3",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.precision=32-true",
    "--data.batch_size=256",
    "--data.max_train_samples=6000",
    "--data.max_eval_samples=2000",
    "--data.num_workers=2",
    "--model.warmup_epochs=0",
)
_FASHION_FOR_MNIST = {
    "mnist": ("Fashion-MNIST (stand-in for MNIST)", ("--data.variant=fashion",)),
}

_T1_ROWS = (
    Row("MNIST", "Rotation", "Rot-Eq.", "mnist_rotation"),
    Row("MNIST", "Translation", "CNN", "mnist_translation"),
    Row("MNIST", "Scale", "SESN", "mnist_scale"),
    Row("CIFAR10", "Rotation", "Rot-Eq.", "cifar10_rotation"),
    Row("CIFAR10", "Translation", "CNN", "cifar10_translation"),
    Row("CIFAR10", "Scale", "SESN", "cifar10_scale"),
    Row("Tiny ImageNet", "Rotation", "Rot-Eq.", "tin_rotation"),
    Row("Tiny ImageNet", "Scale", "SESN", "tin_scale"),
)

_T1_PUBLISHED: dict[str, tuple[tuple[float, float], ...]] = {
    "mnist_rotation": ((68.2, 2.5), (70.3, 5.4), (87.2, 0.8), (99.4, 0.1)),
    "mnist_translation": ((95.9, 0.3), (96.0, 1.3), (94.1, 0.3), (99.2, 0.1)),
    "mnist_scale": ((98.6, 0.1), (98.3, 0.2), (94.7, 0.6), (99.3, 0.1)),
    "cifar10_rotation": ((46.1, 0.6), (48.3, 0.5), (38.4, 0.1), (73.0, 1.1)),
    "cifar10_translation": ((39.2, 0.5), (36.3, 1.1), (40.4, 0.2), (76.2, 1.4)),
    "cifar10_scale": ((59.4, 0.2), (56.7, 0.4), (41.1, 0.6), (78.0, 0.2)),
    "tin_rotation": ((14.9, 0.3), (13.5, 0.5), (6.1, 0.2), (22.5, 0.1)),
    "tin_scale": ((16.2, 0.4), (14.0, 1.3), (6.4, 0.2), (23.7, 0.2)),
}

_T2_ROWS = (
    Row("MNIST", "Translation", "MLP", "mnist_mlp"),
    Row("MNIST", "Scale", "CNN (6 x CHW)", "mnist_cnn6x"),
    Row("CIFAR10", "Scale", "CNN (6 x CHW)", "cifar10_cnn6x"),
)
_T2_PUBLISHED: dict[str, tuple[tuple[float, float], ...]] = {
    "mnist_mlp": ((87.6, 0.2), (58.2, 0.5), (83.0, 0.8), (98.6, 0.1)),
    "mnist_cnn6x": ((95.2, 0.1), (87.2, 2.4), (87.2, 0.6), (99.3, 0.1)),
    "cifar10_cnn6x": ((53.6, 0.2), (37.5, 0.1), (43.6, 0.3), (67.9, 2.1)),
}


def _reference(
    published: dict[str, tuple[tuple[float, float], ...]], methods: tuple[str, ...]
) -> dict[tuple[str, str], tuple[float, float | None]]:
    return {
        (row, method): value
        for row, values in published.items()
        for method, value in zip(methods, values, strict=True)
    }


# Table 1's MNIST CNNs at a quarter of their width (8/16/32 instead of 32/64/128
# channels) so two seeds of the 3 rows x 4 methods fit in well under an hour on 2 cores.
_T1_FASHION_NARROW = {
    "mnist": (
        _FASHION_FOR_MNIST["mnist"][0],
        (*_FASHION_FOR_MNIST["mnist"][1], '--model.backbone_kwargs={"channels": [8, 16, 32]}'),
    ),
}


def _hssl_profiles(
    paper_seeds: tuple[int, ...],
    local_substitutes: dict[str, tuple[str, tuple[str, ...]]] = _FASHION_FOR_MNIST,
    local_note: str = "",
) -> dict[str, Profile]:
    return {
        "local": Profile(
            name="local",
            seeds=(0, 1),
            overrides=_HSSL_LOCAL,
            description=(
                "local profile: 2 seeds, 3 epochs on 6,000 training images (2,000 test "
                f"images), batch 256, fp32 on CPU{local_note}; Fashion-MNIST stands in for "
                "MNIST. Numbers are NOT comparable "
                "to the paper's 500-1300-epoch runs — they check the machinery and the "
                "ordering of methods, not the published values."
            ),
            substitutes=local_substitutes,
        ),
        "paper": Profile(
            name="paper",
            seeds=paper_seeds,
            overrides=(),
            description="paper profile: the paper's hyper-parameters (H-SSL App. A), 3 seeds.",
        ),
    }


TABLE1 = TableSpec(
    name="table1",
    title="H-SSL Table 1: A-SSL vs H-SSL with equivariant backbones",
    methods=_HSSL_METHODS,
    method_prefix=_HSSL_PREFIX,
    rows=_T1_ROWS,
    reference=_reference(_T1_PUBLISHED, _HSSL_METHODS),
    citation=HSSL_CITATION,
    profiles=_hssl_profiles(
        (0, 1, 2), _T1_FASHION_NARROW, ", MNIST backbones at 1/4 width (8/16/32 channels)"
    ),
    linear_eval="beside",
)

TABLE2 = TableSpec(
    name="table2",
    title="H-SSL Table 2: H-SSL without structure (non-equivariant backbones)",
    methods=_HSSL_METHODS,
    method_prefix=_HSSL_PREFIX,
    rows=_T2_ROWS,
    reference=_reference(_T2_PUBLISHED, _HSSL_METHODS),
    citation=HSSL_CITATION,
    profiles=_hssl_profiles((0, 1, 2)),
    linear_eval="beside",
)

_CARE_METHODS = ("SimCLR", "MoCo-v2", "CARE-SimCLR", "CARE-MoCo-v2")
_CARE_PREFIX = {
    "SimCLR": "simclr",
    "MoCo-v2": "mocov2",
    "CARE-SimCLR": "care_simclr",
    "CARE-MoCo-v2": "care_mocov2",
}
_CARE_ROWS = (
    Row("CIFAR10", "SimCLR augmentations", "ResNet-50", "cifar10"),
    Row("CIFAR100", "SimCLR augmentations", "ResNet-50", "cifar100"),
    Row("STL10", "SimCLR augmentations", "ResNet-50", "stl10"),
    Row("ImageNet100", "SimCLR augmentations", "ResNet-50", "imagenet100"),
)
_CARE_PUBLISHED: dict[tuple[str, str], tuple[float, float | None]] = {
    ("cifar10", "SimCLR"): (90.98, None),
    ("cifar10", "MoCo-v2"): (91.95, None),
    ("cifar10", "CARE-SimCLR"): (91.92, None),
    ("cifar10", "CARE-MoCo-v2"): (92.19, None),
    ("cifar100", "SimCLR"): (66.77, None),
    ("cifar100", "MoCo-v2"): (69.88, None),
    ("cifar100", "CARE-SimCLR"): (68.05, None),
    ("cifar100", "CARE-MoCo-v2"): (70.56, None),
    ("stl10", "SimCLR"): (84.19, None),
    ("stl10", "CARE-SimCLR"): (84.64, None),
    ("stl10", "CARE-MoCo-v2"): (88.97, None),
    ("imagenet100", "SimCLR"): (72.79, None),
    ("imagenet100", "MoCo-v2"): (73.50, None),
    ("imagenet100", "CARE-SimCLR"): (76.69, None),
    ("imagenet100", "CARE-MoCo-v2"): (74.30, None),
}

CARE_TABLE = TableSpec(
    name="care",
    title="CARE Table 1: SimCLR / MoCo-v2 and their CARE versions",
    methods=_CARE_METHODS,
    method_prefix=_CARE_PREFIX,
    rows=_CARE_ROWS,
    reference=_CARE_PUBLISHED,
    citation=CARE_CITATION,
    profiles={
        "local": Profile(
            name="local",
            seeds=(0,),
            overrides=(),
            description=(
                "local profile: 1 seed on Fashion-MNIST with the small H-SSL MNIST CNN, a few "
                "epochs on CPU (experiments/*_fashion.yaml); the paper's ResNet-50 rows need "
                "their datasets and GPUs (PROFILE=paper). No published numbers exist for this row."
            ),
            rows=(Row("Fashion-MNIST", "SimCLR augmentations", "H-SSL MNIST CNN", "fashion"),),
        ),
        "paper": Profile(
            name="paper",
            seeds=(0, 1, 2),
            overrides=(),
            description="paper profile: CARE App. E hyper-parameters (ResNet-50, 400 epochs).",
        ),
    },
    linear_eval="headline",
)

GEOMETRY_CITATION = (
    "Investigating the benefits of projection head for representation learning / contrastive "
    "geometry (shared/papers/contrastive_geometry.md), Fig. 1 (projector rank and accuracy over "
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
        "geometry/label_match",
        "geometry/label_match_coarse",
        "geometry/fvu",
    ),
    profiles={
        "local": Profile(
            name="local",
            seeds=(0,),
            overrides=(),
            description=(
                "local profile: 1 seed, SimCLR with a linear projector on Fashion-MNIST "
                "(experiments/geometry_fashion_*.yaml, a few epochs on CPU) standing in for "
                "the paper's 500-epoch ResNet-18 CIFAR-100 runs."
            ),
            rows=_RANK_LOCAL_ROWS,
        ),
        "paper": Profile(
            name="paper",
            seeds=(0,),
            overrides=(),
            description=(
                "paper profile: ResNet-18, linear 512→128 projector, LARS lr 4.0, CIFAR-100, "
                "500 epochs (geometry paper Sec. 2)."
            ),
        ),
    },
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (TABLE1, TABLE2, CARE_TABLE, RANK_TABLE)}


def get_table(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(sorted(TABLES))}")
    return TABLES[name]
