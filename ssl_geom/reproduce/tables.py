"""The grids behind each reproduced table, the papers' published numbers and their claims.

A table is rows (dataset x transformation x backbone) times method columns
times seeds; each cell is one experiment config from ``experiments/`` plus the
profile's overrides. The published numbers and the claims (``claims.Claim``) are
reference data quoted from the papers, each cited by authors, title and arXiv id.

Profiles: ``local`` (2 CPU cores, Fashion-MNIST stand-ins), ``gpu`` (one H100-class GPU,
about 10 minutes a table: the Fashion-MNIST rows at the papers' widths, plus the papers'
own rows where their data is present) and ``paper`` (the papers' settings, a cluster).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .claims import Claim, Comparison, Paper, Quantity

HSSL_PAPER = Paper("Keller, Suau, Zappella", "Homomorphic Self-Supervised Learning", "2211.08282")
CARE_PAPER = Paper(
    "Gupta, Robinson, Lim, Villar, Jegelka",
    "Structuring Representation Geometry with Rotationally Equivariant Contrastive Learning",
    "2306.13924",
)
GEOMETRY_PAPER = Paper(
    "Cosentino, Sengupta, Avestimehr, Soltanolkotabi, Ortega, Willke, Tepper",
    "Toward a Geometrical Understanding of Self-supervised Contrastive Learning",
    "2205.06926",
)


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
    # Extra overrides of single rows (row key -> overrides), e.g. a narrower backbone.
    row_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Extra overrides of single methods (column -> overrides), e.g. CARE's lambda.
    method_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Seeds of single rows (row key -> seeds) instead of ``seeds``: more for a cheap row whose
    # differences are small against its seeds' spread.
    row_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Runs the local launcher trains at once. A run's imports, CLI, data loading and the
    # linear evaluation's tiny steps are mostly single-threaded: on 2 cores two 1-thread runs
    # finished 4 Table 1 runs 1.43-1.56x faster than one 2-thread run at a time
    # (benchmarks/parallel_runs.py).
    parallel_runs: int = 1

    def seeds_of(self, row_key: str) -> tuple[int, ...]:
        """The seeds run for row ``row_key``."""
        return self.row_seeds.get(row_key, self.seeds)


# The linear-evaluation protocol of each dataset (CARE App. E.3): a file of experiments/.
LINEAR_CONFIGS = {
    "Fashion-MNIST": "linear_fashion.yaml",
    "CIFAR-10": "linear_cifar10.yaml",
    "CIFAR-100": "linear_cifar100.yaml",
    "STL10": "linear_stl10.yaml",
    "ImageNet-100": "linear_imagenet100.yaml",
}


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
    # Test-time metrics shown as extra columns per method (record.metrics), "—" when absent.
    test_columns: tuple[tuple[str, str], ...] = ()  # (metric name, printed name)
    claims: tuple[Claim, ...] = ()
    # None: the installed or checked-out ``experiments/`` (see ``configs.experiments_dir``).
    experiments_dir: Path | None = None
    # Where the linear evaluation of the pretrained runs goes (reproduce/evaluation.py).
    linear_eval: LinearEvalMode = "none"
    # Its protocol per dataset name: a config file of the experiments folder.
    linear_configs: dict[str, str] = field(default_factory=lambda: dict(LINEAR_CONFIGS))

    def config_path(self, row: Row, method: str, experiments: Path) -> Path:
        """The config of one cell; ``experiments`` is used unless the table names its own folder."""
        folder = self.experiments_dir or experiments
        return folder / f"{self.method_prefix[method]}_{row.config_stem}.yaml"


HSSL_CITATION = (
    f"{HSSL_PAPER.cite()}, Tables 1-2: top-1 test accuracy of a detached "
    "linear classifier, mean ± std over 3 runs."
)
CARE_CITATION = (
    f"{CARE_PAPER.cite()}, Table 1: "
    "top-1 linear-probe accuracy, mean over 3 classifier initialisations (no std published)."
)

_HSSL_METHODS = ("A-SSL", "H-SSL", "Frozen", "Supervised")
_HSSL_PREFIX = {"A-SSL": "assl", "H-SSL": "hssl", "Frozen": "frozen", "Supervised": "supervised"}

# Budgets. ``local``: 2 shared CPU cores, about 45 minutes a table, two single-threaded runs
# at a time; 3 seeds so every claim has a spread to be judged by. ``gpu``: one H100-class GPU,
# about 10 minutes a table.
_CPU = (
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.precision=32-true",
    "--data.num_workers=2",
)
_GPU = (
    "--trainer.accelerator=gpu",
    "--trainer.devices=1",
    "--trainer.precision=bf16-mixed",
    "--data.num_workers=8",
)
LOCAL_SEEDS = (0, 1, 2)
LOCAL_PARALLEL_RUNS = 2
GPU_SEEDS = (0, 1, 2)


def _hssl_local(epochs: int, test_images: int, validate_every: int) -> tuple[str, ...]:
    """The H-SSL tables' local budget: ``epochs`` on 6,000 training images, batch 256, the
    online probe validated on the test images every ``validate_every`` epochs."""
    return (
        *_CPU,
        f"--trainer.max_epochs={epochs}",
        f"--trainer.check_val_every_n_epoch={validate_every}",
        "--data.batch_size=256",
        "--data.max_train_samples=6000",
        f"--data.max_eval_samples={test_images}",
        "--model.warmup_epochs=0",
    )


# Full Fashion-MNIST (60,000 / 10,000 images) at the paper's widths; batch 512.
_HSSL_GPU = (
    *_GPU,
    "--trainer.max_epochs=5",
    "--trainer.check_val_every_n_epoch=1",
    "--data.batch_size=512",
    "--model.warmup_epochs=0",
)
_FASHION_LABEL = "Fashion-MNIST (stand-in for MNIST)"
_FASHION_FOR_MNIST: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": (_FASHION_LABEL, ("--data.variant=fashion",))
}
# The MNIST CNNs at a quarter of their width (8/16/32 instead of 32/64/128 channels): a
# full-width Table 2 CNN (6xCHW) run took 675 s for 3 epochs on 6,000 images here.
_QUARTER_WIDTH = '--model.backbone_kwargs={"channels": [8, 16, 32]}'

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


def _hssl_profiles(
    local_row_overrides: dict[str, tuple[str, ...]],
    local_note: str,
    local_epochs: int = 3,
    local_test_images: int = 2000,
    local_seeds: tuple[int, ...] = LOCAL_SEEDS,
    local_validate_every: int = 1,
    local_row_seeds: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, Profile]:
    row_seeds = local_row_seeds or {}
    seeds_note = "".join(f" ({len(seeds)} on row {key})" for key, seeds in row_seeds.items())
    return {
        "local": Profile(
            name="local",
            seeds=local_seeds,
            overrides=_hssl_local(local_epochs, local_test_images, local_validate_every),
            description=(
                f"local profile: {len(local_seeds)} seeds{seeds_note}, {local_epochs} epochs "
                "on 6,000 "
                f"training images ({local_test_images:,} test images), batch 256, fp32 on 2 CPU "
                f"cores{local_note}; Fashion-MNIST "
                "stands in for MNIST. Numbers are NOT comparable to the paper's 500-1300-epoch "
                "runs: they test the claims' orderings, not the published values."
            ),
            substitutes=_FASHION_FOR_MNIST,
            row_overrides=local_row_overrides,
            row_seeds=row_seeds,
            parallel_runs=LOCAL_PARALLEL_RUNS,
        ),
        "gpu": Profile(
            name="gpu",
            seeds=GPU_SEEDS,
            overrides=_HSSL_GPU,
            description=(
                f"gpu profile: {len(GPU_SEEDS)} seeds, 5 epochs on all 60,000 Fashion-MNIST "
                "training images (10,000 test images) at the paper's widths, batch 512, bf16 on "
                "one GPU (about 10 minutes a table on an H100-class GPU); the CIFAR10 / Tiny "
                "ImageNet rows run when their data is present."
            ),
            substitutes=_FASHION_FOR_MNIST,
        ),
        "paper": Profile(
            name="paper",
            seeds=(0, 1, 2),
            overrides=(),
            description="paper profile: the paper's hyper-parameters (H-SSL App. A), 3 seeds.",
        ),
    }


_HSSL_EQUIVALENCE = (
    "we see an equivalence between the performance of the A-SSL models and H-SSL models which "
    "significantly differs from the frozen and supervised baselines"
)
# The H-SSL claims are judged on each run's linear evaluation (reproduce/evaluation.py), not on
# the table's headline: that headline is the paper's detached classifier trained online, which
# the paper's 500 epochs converge but a short budget leaves far from converged (the issue's
# converged readout put A-SSL's 68% online probe on the MLP row at 83.7). The linear
# evaluation reads the same frozen backbone to convergence, which is what the claims compare.
# Tolerance of "comparable": the paper's own Table 1 calls gaps of up to 2.9 points
# (CIFAR10 translation, 39.2 vs 36.3) equivalent, so 3 points.
HSSL_COMPARABLE_POINTS = 3.0
TABLE1_CLAIMS = (
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.1, Table 1: H-SSL comparable to A-SSL on every row",
        _HSSL_EQUIVALENCE,
        (
            Comparison(
                "comparable",
                Quantity("H-SSL", "linear"),
                Quantity("A-SSL", "linear"),
                tolerance=HSSL_COMPARABLE_POINTS,
            ),
        ),
    ),
    Claim(
        HSSL_PAPER,
        "H-SSL Table 1: the supervised backbone is best on every row",
        "We compare A-SSL and H-SSL with random frozen and fully supervised backbones "
        "(Table 1 caption; Supervised is the highest number in every row)",
        tuple(
            Comparison("greater", Quantity("Supervised", "linear"), Quantity(other, "linear"))
            for other in ("A-SSL", "H-SSL", "Frozen")
        ),
    ),
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.1, Table 1: on the translation and scale rows SSL beats the frozen backbone",
        _HSSL_EQUIVALENCE,
        tuple(
            Comparison("greater", Quantity(method, "linear"), Quantity("Frozen", "linear"))
            for method in ("A-SSL", "H-SSL")
        ),
        rows=("Translation", "Scale"),
    ),
)
TABLE2_CLAIMS = (
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.2, Table 2: without equivariant structure H-SSL falls clearly below A-SSL",
        "when equivariance is removed, but all else remains equal, L^H-SSL models perform "
        "significantly below their input-augmentation counterparts",
        # "clearly": by more than 1 point, beyond the seeds' spread.
        (
            Comparison(
                "greater", Quantity("A-SSL", "linear"), Quantity("H-SSL", "linear"), margin=1.0
            ),
        ),
    ),
)


TABLE1 = TableSpec(
    name="table1",
    title="H-SSL Table 1: A-SSL vs H-SSL with equivariant backbones",
    methods=_HSSL_METHODS,
    method_prefix=_HSSL_PREFIX,
    rows=_T1_ROWS,
    reference=_reference(_T1_PUBLISHED, _HSSL_METHODS),
    citation=HSSL_CITATION,
    profiles=_hssl_profiles(
        {key: (_QUARTER_WIDTH,) for key in ("mnist_rotation", "mnist_translation", "mnist_scale")},
        ", MNIST CNNs at 1/4 width (8/16/32 channels)",
        # Measured: 3 epochs with 2,000 test images took 17.5 min, 6 epochs with all 10,000
        # 46.5 min, and neither decided the H-SSL checks (the global-pool readout's seed
        # spread). No claim reads the online probe's validation on 10,000 images after every
        # epoch (5-56% of a run's fit time on the rotation and translation rows): it is
        # validated once, after the last epoch. With the grid readout 3 seeds decided claims
        # 1-2 but not claim 3, whose translation differences (SSL - Frozen, -0.6 to -1.0) are
        # small against that row's seed spread (0.65-0.83); 5 seeds on every row decided all
        # three in 67.7 min. The translation row is the cheapest (fit, test and linear evaluation
        # of a run: 30-79 s; scale: 100-356 s), so it alone gets 5 seeds: the same verdicts in
        # 41.7 min.
        local_epochs=6,
        local_test_images=10000,
        local_validate_every=6,
        local_row_seeds={"mnist_translation": (0, 1, 2, 3, 4)},
    ),
    claims=TABLE1_CLAIMS,
    linear_eval="beside",
    # The H-SSL MNIST readout's coarse spatial layout (experiments/linear_fashion_hssl.yaml):
    # with the global pool of the quarter-width CNNs (32 numbers) the seeds' spread hid every
    # H-SSL difference.
    linear_configs={**LINEAR_CONFIGS, "Fashion-MNIST": "linear_fashion_hssl.yaml"},
)

TABLE2 = TableSpec(
    name="table2",
    title="H-SSL Table 2: H-SSL without structure (non-equivariant backbones)",
    methods=_HSSL_METHODS,
    method_prefix=_HSSL_PREFIX,
    rows=_T2_ROWS,
    reference=_reference(_T2_PUBLISHED, _HSSL_METHODS),
    citation=HSSL_CITATION,
    profiles=_hssl_profiles(
        {"mnist_cnn6x": (_QUARTER_WIDTH,)}, ", the CNN (6xCHW) at 1/4 width (8/16/32 channels)"
    ),
    claims=TABLE2_CLAIMS,
    # The global pool (linear_fashion.yaml): the MLP's output has no spatial layout to grid.
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

_CARE_FASHION_ROWS = (Row("Fashion-MNIST", "SimCLR augmentations", "H-SSL MNIST CNN", "fashion"),)
# CARE's lambda on Fashion-MNIST. The sweep (`make reproduce-care-lambda`, its 4-epoch profile,
# 3 seeds; test-set Wahba error / gamma_f / linear accuracy): SimCLR 20.5 / 0.65 / 71.4,
# lambda = 0.01: 20.5 / 0.58 / 71.5, 0.1: 20.3 / 0.30 / 71.5, 0.3: 18.7 / 0.16 / 71.6,
# 1: 10.6 / 0.16 / 69.6 (1.7 points of accuracy). On this table's 12-epoch, 5-seed budget
# SimCLR's own Wahba error falls to 18.25, and neither 0.1 (18.42, accuracy +0.51) nor 0.3
# (18.77, accuracy -0.02 with interval [-0.85, 0.82]) lowers it: 0.3 buys nothing, and 0.1,
# the top of the paper's range (CARE App. Fig. 8: 0.01 <= lambda <= 0.1), stays.
CARE_LOCAL_LAMBDA = 0.1


def _care_local(seeds: tuple[int, ...], epochs: int) -> Profile:
    """The CARE tables' CPU budget: ``epochs`` x 40 batches of 128 on Fashion-MNIST, 1/4 width."""
    return Profile(
        name="local",
        seeds=seeds,
        overrides=(*_CPU, f"--trainer.max_epochs={epochs}", _QUARTER_WIDTH),
        description=(
            f"local profile: {len(seeds)} seeds on Fashion-MNIST with the H-SSL MNIST CNN at "
            f"1/4 width, {epochs} epochs x 40 batches of 128 on CPU (experiments/*_fashion.yaml)"
        ),
        parallel_runs=LOCAL_PARALLEL_RUNS,
    )


# The lambda sweep's budget (4 epochs x 40 batches, 3 seeds: 7.8 min for its first 4 columns,
# 2.3 min more for lambda = 0.3), on which CARE_LOCAL_LAMBDA is chosen.
_CARE_LAMBDA_LOCAL = _care_local(LOCAL_SEEDS, epochs=4)
# The CARE table's budget: 3x the sweep's steps and 5 seeds (the 4-epoch, 3-seed budget left
# CARE-MoCo-v2's accuracy and the Wahba error undecided: paired differences -0.36 [-0.77, 0.05]
# and +0.15 [-0.00, 0.30]).
CARE_LOCAL_SEEDS = (0, 1, 2, 3, 4)
_CARE_LOCAL = _care_local(CARE_LOCAL_SEEDS, epochs=12)
_CARE_LAMBDA_OVERRIDES: dict[str, tuple[str, ...]] = {
    method: (f"--model.equivariance_weight={CARE_LOCAL_LAMBDA}",)
    for method in ("CARE-SimCLR", "CARE-MoCo-v2")
}
CARE_CLAIMS = (
    Claim(
        CARE_PAPER,
        "CARE Sec. 5, Table 1: CARE's linear accuracy is at least its base method's",
        "Table 1 shows consistent improvements in performance using CARE",
        (
            Comparison("greater", Quantity("CARE-SimCLR"), Quantity("SimCLR"), margin=-0.5),
            Comparison("greater", Quantity("CARE-MoCo-v2"), Quantity("MoCo-v2"), margin=-0.5),
        ),
    ),
    Claim(
        CARE_PAPER,
        "CARE Sec. 4-5, Fig. 2c: CARE's Wahba error is lower than SimCLR's",
        "Results show that CARE has a lower average error and worst-case error",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", "test:geometry/wahba_error_test"),
                Quantity("CARE-SimCLR", "test:geometry/wahba_error_test"),
            ),
        ),
    ),
    Claim(
        CARE_PAPER,
        "CARE App. F.2.1, Fig. 5: CARE's relative equivariance γ_f is lower than SimCLR's",
        "they differ in their sensitivity to augmentations, with CARE attaining a much lower "
        "relative equivariance error",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", "test:geometry/gamma_f_test"),
                Quantity("CARE-SimCLR", "test:geometry/gamma_f_test"),
            ),
        ),
    ),
)

CARE_TABLE = TableSpec(
    name="care",
    title="CARE Table 1: SimCLR / MoCo-v2 and their CARE versions",
    methods=_CARE_METHODS,
    method_prefix=_CARE_PREFIX,
    rows=_CARE_ROWS,
    reference=_CARE_PUBLISHED,
    citation=CARE_CITATION,
    profiles={
        "local": dataclasses.replace(
            _CARE_LOCAL,
            description=(
                f"{_CARE_LOCAL.description}, CARE's lambda = {CARE_LOCAL_LAMBDA:g} (see "
                "CARE_LOCAL_LAMBDA); the paper's ResNet-50 rows need their datasets and GPUs "
                "(PROFILE=paper). No published numbers exist for this row."
            ),
            rows=_CARE_FASHION_ROWS,
            method_overrides=_CARE_LAMBDA_OVERRIDES,
        ),
        "gpu": Profile(
            name="gpu",
            seeds=GPU_SEEDS,
            overrides=(
                *_GPU,
                "--trainer.max_epochs=10",
                "--trainer.limit_train_batches=1.0",
                "--trainer.limit_val_batches=1.0",
                "--data.batch_size=256",
                "--data.max_train_samples=null",
                "--data.max_eval_samples=null",
            ),
            description=(
                f"gpu profile: {len(GPU_SEEDS)} seeds, 10 epochs on all 60,000 Fashion-MNIST "
                "images with the full-width H-SSL MNIST CNN, batch 256, bf16 on one GPU, "
                f"CARE's lambda = {CARE_LOCAL_LAMBDA:g}; the ResNet-50 rows run with "
                "PROFILE=paper."
            ),
            rows=_CARE_FASHION_ROWS,
            method_overrides=_CARE_LAMBDA_OVERRIDES,
        ),
        "paper": Profile(
            name="paper",
            seeds=(0, 1, 2),
            overrides=(),
            description="paper profile: CARE App. E hyper-parameters (ResNet-50, 400 epochs).",
        ),
    },
    test_columns=(
        ("geometry/wahba_error_test", "Wahba error"),
        ("geometry/gamma_f_test", "Relative equivariance γ_f"),
    ),
    claims=CARE_CLAIMS,
    linear_eval="headline",
)

# CARE's lambda sweep (CARE App. Fig. 8: linear readout error as lambda varies, optimum in
# 0.01 <= lambda <= 0.1 on CIFAR-10), here on the CARE table's Fashion-MNIST row: one SimCLR
# column (lambda = 0) and one CARE-SimCLR column per lambda, with accuracy, Wahba error and
# gamma_f. It is how the CARE table's local lambda (CARE_LOCAL_LAMBDA) is chosen.
CARE_LAMBDAS = (0.01, 0.1, 0.3, 1.0)
_LAMBDA_COLUMNS = tuple(f"CARE λ={lam:g}" for lam in CARE_LAMBDAS)
_CARE_LAMBDA_METHODS = ("SimCLR", *_LAMBDA_COLUMNS)
_CARE_LAMBDA_PREFIX = {"SimCLR": "simclr", **{c: "care_simclr" for c in _LAMBDA_COLUMNS}}
_SWEEP_OVERRIDES: dict[str, tuple[str, ...]] = {
    column: (f"--model.equivariance_weight={lam:g}",)
    for column, lam in zip(_LAMBDA_COLUMNS, CARE_LAMBDAS, strict=True)
}
CARE_LAMBDA_CLAIMS = (
    Claim(
        CARE_PAPER,
        "CARE Sec. 3-4: the equivariance term lowers the Wahba error (largest lambda vs SimCLR)",
        "CARE additionally enforces the orthogonal transformations in embedding space",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", "test:geometry/wahba_error_test"),
                Quantity(_LAMBDA_COLUMNS[-1], "test:geometry/wahba_error_test"),
            ),
        ),
    ),
    Claim(
        CARE_PAPER,
        "CARE App. Fig. 8: a lambda in 0.01-0.1 is at least as accurate as SimCLR",
        "finding optimal λ in the range 0.01 ≤ λ ≤ 0.1",
        tuple(
            Comparison("greater", Quantity(column), Quantity("SimCLR"), margin=-0.5)
            for column, lam in zip(_LAMBDA_COLUMNS, CARE_LAMBDAS, strict=True)
            if lam <= 0.1
        ),
    ),
)

CARE_LAMBDA_TABLE = TableSpec(
    name="care_lambda",
    title="CARE App. Fig. 8: CARE-SimCLR across lambda (the equivariance weight)",
    methods=_CARE_LAMBDA_METHODS,
    method_prefix=_CARE_LAMBDA_PREFIX,
    rows=_CARE_ROWS[:1],
    reference={},
    citation=(
        f"{CARE_PAPER.cite()}, App. Fig. 8 (linear readout error of CIFAR-10 ResNet-50 models "
        "for varying lambda; curves, no numbers: no reference values are shown)."
    ),
    profiles={
        name: dataclasses.replace(
            base,
            description=base.description.split(", CARE's lambda")[0]
            + f"; CARE-SimCLR at lambda = {', '.join(f'{lam:g}' for lam in CARE_LAMBDAS)}.",
            rows=_CARE_FASHION_ROWS,
            method_overrides=_SWEEP_OVERRIDES,
        )
        for name, base in (("local", _CARE_LAMBDA_LOCAL), ("gpu", CARE_TABLE.profiles["gpu"]))
    },
    test_columns=CARE_TABLE.test_columns,
    claims=CARE_LAMBDA_CLAIMS,
    linear_eval="headline",
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

# Claim 1 is judged on W's effective rank (exp of its spectrum's entropy, metrics.effective_rank),
# not on Eq. 2's count: the paper gives no tau, and on the local profile the count at the
# callback's relative tau = 1e-2 is 64 of 64 for every strength (measured: W's spectrum decays
# smoothly, 1 to 0.04 of sigma_1, with no gap), so the count says only where the cut sits,
# while the effective rank follows the whole spectrum. Claim 2 keeps Eq. 2, the measure under
# which the paper calls the encoder "full rank".
# Adam at 10x the configs' lr: the smallest change under which W moves within a CPU budget
# (local profile description).
_RANK_LR = ("--model.lr=0.01",)
_PROJECTOR_RANK = "final:geometry/projector_effective_rank"
RANK_CLAIMS = (
    Claim(
        GEOMETRY_PAPER,
        "Geometry paper Sec. 4, Fig. 1: the projector's rank falls as augmentation strength grows "
        "(effective rank of W)",
        "the stronger the augmentations, the lower the rank of the projector weights",
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
    ),
    Claim(
        GEOMETRY_PAPER,
        "Geometry paper Fig. 4 and App. E, Fig. 9: the encoder keeps a higher rank than the "
        "projector (as fractions of full rank)",
        "the representation induced by the encoder is full rank (and close to full rank at the "
        "initialization) until the end of the training",
        # Encoder: rank of the reference embeddings' covariance; projector: rank of W (Eq. 2);
        # each as a fraction of its maximum ("full rank" is 1), since the encoder has more
        # dimensions than the projector has singular values (local 128 vs 64, paper 512 vs 128).
        (
            Comparison(
                "greater",
                Quantity("SimCLR", "final:geometry/embedding_rank_fraction"),
                Quantity("SimCLR", "final:geometry/projector_rank_fraction"),
            ),
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
        "geometry/label_match",
        "geometry/label_match_coarse",
        "geometry/fvu",
    ),
    profiles={
        "local": Profile(
            name="local",
            seeds=LOCAL_SEEDS,
            overrides=(
                *_CPU,
                "--trainer.max_epochs=15",
                "--data.batch_size=128",
                "--data.max_train_samples=4000",
                "--data.max_eval_samples=2000",
                *_RANK_LR,
            ),
            description=(
                f"local profile: {len(LOCAL_SEEDS)} seeds, SimCLR with a linear projector on "
                "Fashion-MNIST (experiments/geometry_fashion_*.yaml; here 15 Adam epochs at "
                "lr 1e-2 on 4,000 images, batch 128, 465 steps, on CPU) standing in for the "
                "paper's 500-epoch ResNet-18 CIFAR-100 runs. The configs' own lr 1e-3 leaves W "
                "at its initialisation over this budget (measured: singular values 0.17-1.0, "
                "as a fresh init's 0.18-0.96); at lr 1e-2 W learns. The projector's rank is "
                "judged by its effective rank (see RANK_CLAIMS)."
            ),
            rows=_RANK_LOCAL_ROWS,
            parallel_runs=LOCAL_PARALLEL_RUNS,
        ),
        "gpu": Profile(
            name="gpu",
            seeds=GPU_SEEDS,
            overrides=(
                *_GPU,
                "--trainer.max_epochs=15",
                "--data.batch_size=512",
                "--data.max_train_samples=null",
                "--data.max_eval_samples=null",
                *_RANK_LR,
            ),
            description=(
                f"gpu profile: {len(GPU_SEEDS)} seeds, 15 Adam epochs at lr 1e-2 on all 60,000 "
                "Fashion-MNIST images, batch 512, bf16 on one GPU (about 10 minutes)."
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
    claims=RANK_CLAIMS,
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (TABLE1, TABLE2, CARE_TABLE, CARE_LAMBDA_TABLE, RANK_TABLE)
}


def get_table(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(sorted(TABLES))}")
    return TABLES[name]
