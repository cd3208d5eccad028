"""What a reproduced table is made of: its rows, its profiles (budgets) and the table itself.

A table is rows (dataset x transformation x backbone) times method columns times seeds; each
cell is one experiment config from ``experiments/`` plus the profile's overrides. The papers'
tables themselves (rows, published numbers, claims, profiles) are data in ``tables/``, one
module per paper; docs/reproduce.md describes the whole system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .claims import Claim, Published

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
class Choice:
    """A setting a table selects on its validation split (``reproduce/selection.py``)."""

    setting: str  # printed name, e.g. "CARE's λ"
    option: str  # the override the chosen value sets, e.g. "--model.equivariance_weight"
    values: dict[str, float]  # candidate column -> value, in grid order
    metric: str = "linear/val_acc"  # a validation metric of each run's linear evaluation


@dataclass(frozen=True)
class UsesSelection:
    """Columns of a profile that train with the value another table selects (its ``Choice``)."""

    table: str
    methods: tuple[str, ...]


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
    # Runs the local launcher trains at once. A run's imports, CLI, data loading and the
    # linear evaluation's tiny steps are mostly single-threaded, so on few cores several
    # one-thread runs beat one many-thread run (measured: benchmarks/parallel_runs.py).
    parallel_runs: int = 1
    # Columns trained with another table's selected value, read when the profile is planned
    # (selection.resolve_profile); None: nothing selected.
    uses_selection: UsesSelection | None = None


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
    """One reproduced table: its grid, the paper's numbers and claims, and its profiles."""

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
    # How many runs each published mean ± std is over (the paper's own table as a check of
    # the claims); None where the paper publishes no std.
    reference_runs: int | None = None
    # None: the installed or checked-out ``experiments/`` (see ``configs.experiments_dir``).
    experiments_dir: Path | None = None
    # Where the linear evaluation of the pretrained runs goes (reproduce/evaluation.py).
    linear_eval: LinearEvalMode = "none"
    # Its protocol per dataset name: a config file of the experiments folder.
    linear_configs: dict[str, str] = field(default_factory=lambda: dict(LINEAR_CONFIGS))
    # A setting this table selects on its validation split for other tables (CARE's λ).
    selects: Choice | None = None

    def published(self) -> dict[tuple[str, str], Published]:
        """The paper's numbers as the claims read them: (row key, method) -> mean ± std over
        :attr:`reference_runs` runs (no std: a point)."""
        published = {}
        for key, (mean, std) in self.reference.items():
            if std is not None and self.reference_runs is None:
                raise ValueError(
                    f"table {self.name!r} publishes a std for {key} but no reference_runs; set "
                    "it to the number of runs the paper's mean ± std is over"
                )
            published[key] = Published(mean, std, self.reference_runs or 1)
        return published

    def config_path(self, row: Row, method: str, experiments: Path) -> Path:
        """The config of one cell; ``experiments`` is used unless the table names its own folder."""
        folder = self.experiments_dir or experiments
        return folder / f"{self.method_prefix[method]}_{row.config_stem}.yaml"
