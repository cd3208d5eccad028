"""H-SSL Tables 1 and 2: their rows, published numbers, claims and profiles.

Keller, Suau, Zappella, "Homomorphic Self-Supervised Learning", arXiv:2211.08282. Table 1
compares augmentation-based SSL (A-SSL) with H-SSL on equivariant backbones, Table 2 the
same without equivariant structure.
"""

from __future__ import annotations

from ..claims import Claim, Comparison, Paper, Quantity
from ..schema import Profile, Row, TableSpec
from .profiles import QUARTER_WIDTH, table_profiles

HSSL_PAPER = Paper("Keller, Suau, Zappella", "Homomorphic Self-Supervised Learning", "2211.08282")
HSSL_CITATION = (
    f"{HSSL_PAPER.cite()}, Tables 1-2: top-1 test accuracy of a detached "
    "linear classifier, mean ± std over 3 runs."
)

_HSSL_METHODS = ("A-SSL", "H-SSL", "Frozen", "Supervised")
_HSSL_PREFIX = {"A-SSL": "assl", "H-SSL": "hssl", "Frozen": "frozen", "Supervised": "supervised"}

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

_T2_ROWS = (
    Row("MNIST", "Translation", "MLP", "mnist_mlp"),
    Row("MNIST", "Scale", "CNN (6 x CHW)", "mnist_cnn6x"),
    Row("CIFAR10", "Scale", "CNN (6 x CHW)", "cifar10_cnn6x"),
)

# The paper's accuracy (mean, std) of every row of both tables, in _HSSL_METHODS order.
_PUBLISHED: dict[str, tuple[tuple[float, float], ...]] = {
    "mnist_rotation": ((68.2, 2.5), (70.3, 5.4), (87.2, 0.8), (99.4, 0.1)),
    "mnist_translation": ((95.9, 0.3), (96.0, 1.3), (94.1, 0.3), (99.2, 0.1)),
    "mnist_scale": ((98.6, 0.1), (98.3, 0.2), (94.7, 0.6), (99.3, 0.1)),
    "cifar10_rotation": ((46.1, 0.6), (48.3, 0.5), (38.4, 0.1), (73.0, 1.1)),
    "cifar10_translation": ((39.2, 0.5), (36.3, 1.1), (40.4, 0.2), (76.2, 1.4)),
    "cifar10_scale": ((59.4, 0.2), (56.7, 0.4), (41.1, 0.6), (78.0, 0.2)),
    "tin_rotation": ((14.9, 0.3), (13.5, 0.5), (6.1, 0.2), (22.5, 0.1)),
    "tin_scale": ((16.2, 0.4), (14.0, 1.3), (6.4, 0.2), (23.7, 0.2)),
    "mnist_mlp": ((87.6, 0.2), (58.2, 0.5), (83.0, 0.8), (98.6, 0.1)),
    "mnist_cnn6x": ((95.2, 0.1), (87.2, 2.4), (87.2, 0.6), (99.3, 0.1)),
    "cifar10_cnn6x": ((53.6, 0.2), (37.5, 0.1), (43.6, 0.3), (67.9, 2.1)),
}


def _reference(rows: tuple[Row, ...]) -> dict[tuple[str, str], tuple[float, float | None]]:
    """The published values of ``rows``, keyed by (row, method)."""
    return {
        (row.key, method): value
        for row in rows
        for method, value in zip(_HSSL_METHODS, _PUBLISHED[row.key], strict=True)
    }


_FASHION_LABEL = "Fashion-MNIST (stand-in for MNIST)"
_FASHION_FOR_MNIST: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": (_FASHION_LABEL, ("--data.variant=fashion",))
}
# Full Fashion-MNIST (60,000 / 10,000 images) at the paper's widths; batch 512. The online
# probe is validated once, after the last epoch: no claim reads its per-epoch validation.
_HSSL_GPU = (
    "--trainer.max_epochs=5",
    "--trainer.check_val_every_n_epoch=5",
    "--data.batch_size=512",
    "--model.warmup_epochs=0",
)


def _hssl_profiles(
    local_row_overrides: dict[str, tuple[str, ...]],
    local_note: str,
    local_epochs: int = 3,
    local_test_images: int = 2000,
    local_validate_every: int = 1,
) -> dict[str, Profile]:
    """The H-SSL tables' profiles. Local: ``local_epochs`` on 6,000 training images, batch
    256, the online probe validated on ``local_test_images`` test images every
    ``local_validate_every`` epochs; Fashion-MNIST stands in for MNIST in local and gpu."""
    return table_profiles(
        local_overrides=(
            f"--trainer.max_epochs={local_epochs}",
            f"--trainer.check_val_every_n_epoch={local_validate_every}",
            "--data.batch_size=256",
            "--data.max_train_samples=6000",
            f"--data.max_eval_samples={local_test_images}",
            "--model.warmup_epochs=0",
        ),
        local_text=(
            f", {local_epochs} epochs on 6,000 training images ({local_test_images:,} test "
            f"images), batch 256, fp32 on 2 CPU cores{local_note}; Fashion-MNIST stands in for "
            "MNIST. Numbers are NOT comparable to the paper's 500-1300-epoch runs: they test "
            "the claims' orderings, not the published values."
        ),
        gpu_overrides=_HSSL_GPU,
        gpu_text=(
            ", 5 epochs on all 60,000 Fashion-MNIST training images (10,000 test images) at the "
            "paper's widths, batch 512, bf16 on one GPU, 4 runs at a time (time per table: an estimate, "
            "docs/reproduce.md); the CIFAR10 / Tiny ImageNet rows run when their data is present."
        ),
        paper_text="the paper's hyper-parameters (H-SSL App. A), 3 seeds.",
        substitutes=_FASHION_FOR_MNIST,
        local_row_overrides=local_row_overrides,
    )


# The H-SSL claims are judged on each run's linear evaluation (reproduce/evaluation.py), not on
# the table's headline: that headline is the paper's detached classifier trained online, which
# the paper's 500 epochs converge but a short budget leaves far from converged (the issue's
# converged readout put A-SSL's 68% online probe on the MLP row at 83.7). The linear
# evaluation reads the same frozen backbone to convergence, which is what the claims compare.
# The equivalence margin: the paper's own Table 1 calls gaps of up to 2.9 points (CIFAR10
# translation, 39.2 vs 36.3) equivalent, so 3 points.
HSSL_COMPARABLE_POINTS = 3.0
_HSSL_EQUIVALENCE = (
    "Ultimately, we see an equivalence between the performance of the A-SSL models and H-SSL "
    "models which significantly differs from the frozen and supervised baselines, validating "
    "our theoretical conclusions from Section 3."
)
_HSSL_BASELINES = ("Frozen", "Supervised")
TABLE1_CLAIMS = (
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.1, Table 1: H-SSL is equivalent to A-SSL on every row",
        _HSSL_EQUIVALENCE,
        (
            Comparison(
                "comparable",
                Quantity("H-SSL", "linear"),
                Quantity("A-SSL", "linear"),
                tolerance=HSSL_COMPARABLE_POINTS,
            ),
        ),
        encoding=(
            f"equivalence read as within ±{HSSL_COMPARABLE_POINTS:g} points: the paper's own "
            "Table 1 calls gaps of up to 2.9 points equivalent (CIFAR10 translation)."
        ),
    ),
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.1, Table 1: A-SSL and H-SSL each differ from the frozen and the "
        "supervised baselines on every row",
        _HSSL_EQUIVALENCE,
        tuple(
            Comparison(
                "differs",
                Quantity(method, "linear"),
                Quantity(baseline, "linear"),
                tolerance=HSSL_COMPARABLE_POINTS,
            )
            for method in ("A-SSL", "H-SSL")
            for baseline in _HSSL_BASELINES
        ),
        encoding=(
            "'significantly differs' read as an interval excluding 0, in either direction; "
            f"'does not differ' as one within ±{HSSL_COMPARABLE_POINTS:g}, claim 1's equivalence "
            "margin."
        ),
    ),
)
_HSSL_NO_STRUCTURE = (
    "We thus observe that when equivariance is removed, but all else remains equal, L^H-SSL "
    "models perform significantly below their input-augmentation counterparts, and similarly "
    "to a ‘frozen’ randomly initialized backbone baselines, indicating the learning algorithm "
    "is no longer effective."
)
TABLE2_CLAIMS = (
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.2, Table 2: without equivariant structure H-SSL falls below A-SSL",
        _HSSL_NO_STRUCTURE,
        (Comparison("greater", Quantity("A-SSL", "linear"), Quantity("H-SSL", "linear")),),
        encoding="'significantly below' read as an interval of A-SSL − H-SSL above 0.",
    ),
    Claim(
        HSSL_PAPER,
        "H-SSL Sec. 4.2, Table 2: without equivariant structure H-SSL is similar to, or worse "
        "than, the frozen backbone",
        _HSSL_NO_STRUCTURE,
        (
            Comparison(
                "greater",
                Quantity("Frozen", "linear"),
                Quantity("H-SSL", "linear"),
                margin=-HSSL_COMPARABLE_POINTS,
            ),
        ),
        encoding=(
            "'similarly to' read by the Table 2 caption, \"H-SSL methods perform similar to, or "
            'worse than, the frozen baseline": Frozen − H-SSL above '
            f"−{HSSL_COMPARABLE_POINTS:g}, the equivalence margin of Table 1."
        ),
    ),
)


def _hssl_table(
    name: str,
    title: str,
    rows: tuple[Row, ...],
    profiles: dict[str, Profile],
    claims: tuple[Claim, ...],
) -> TableSpec:
    """One H-SSL table: the four columns and the published values of ``rows`` (3 runs each).

    Its linear evaluation is beside the headline, with the same protocol as every Fashion-MNIST
    table (linear_fashion.yaml, global pool): the grid readout once used for Table 1 was
    adopted after seeing verdicts (docs/reproduce.md).
    """
    return TableSpec(
        name=name,
        title=title,
        methods=_HSSL_METHODS,
        method_prefix=_HSSL_PREFIX,
        rows=rows,
        reference=_reference(rows),
        citation=HSSL_CITATION,
        profiles=profiles,
        claims=claims,
        reference_runs=3,
        linear_eval="beside",
    )


TABLE1 = _hssl_table(
    "table1",
    "H-SSL Table 1: A-SSL vs H-SSL with equivariant backbones",
    _T1_ROWS,
    _hssl_profiles(
        {key: (QUARTER_WIDTH,) for key in ("mnist_rotation", "mnist_translation", "mnist_scale")},
        ", MNIST CNNs at 1/4 width (8/16/32 channels)",
        # All 10,000 test images, read once at the end (docs/reproduce.md).
        local_epochs=6,
        local_test_images=10000,
        local_validate_every=6,
    ),
    TABLE1_CLAIMS,
)

TABLE2 = _hssl_table(
    "table2",
    "H-SSL Table 2: H-SSL without structure (non-equivariant backbones)",
    _T2_ROWS,
    _hssl_profiles(
        {"mnist_cnn6x": (QUARTER_WIDTH,)}, ", the CNN (6xCHW) at 1/4 width (8/16/32 channels)"
    ),
    TABLE2_CLAIMS,
)
