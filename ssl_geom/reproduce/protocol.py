"""How a profile's runs differ from the paper's own settings, printed in its table.

The ``paper`` profile trains each table's configs as they are; ``local`` and ``gpu`` swap
datasets, narrow backbones, shorten training and may evaluate with another linear protocol.
A reader of a generated table must see each of those differences in the table itself, not
behind a file name (issue 26). This module reads the configs a profile trains (each YAML
file plus the profile's overrides, without the CLI parse, so a table renders quickly and the
same text every time) and lists every setting of :data:`SETTINGS` and of the linear
protocol whose values differ from the paper profile's. A setting a file leaves unset shows as
"default" (the method's or DataModule's own default).
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from .plan import plan_cells
from .schema import Profile, TableSpec

Config = dict[str, Any]
UNSET = "default"


def _at(config: Config, path: str) -> Any:
    """The value at ``path`` ("model.lr" reads model.init_args.lr), or :data:`UNSET`."""
    node: Any = config
    for key in path.split("."):
        if isinstance(node, dict) and "init_args" in node and key not in node:
            node = node["init_args"]
        if not isinstance(node, dict) or key not in node:
            return UNSET
        node = node[key]
    return node


def _set(config: Config, path: str, value: Any) -> None:
    node = config
    *parents, last = path.split(".")
    for key in parents:
        if "init_args" in node and key not in node:
            node = node["init_args"]
        node = node.setdefault(key, {})
    if "init_args" in node and last not in node:
        node = node["init_args"]
    node[last] = value


def configured(config_path: str | Path, overrides: Iterable[str]) -> Config:
    """``config_path``'s YAML with the ``--key=value`` overrides applied as the CLI would."""
    config: Config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    for override in overrides:
        key, _, value = override.removeprefix("--").partition("=")
        _set(config, key, yaml.safe_load(value))
    return config


def dataset_name(config: Config) -> str:
    """The name the DataModule gives its dataset (``Fashion-MNIST``, ``CIFAR-10``, ...)."""
    class_path = _at(config, "data.class_path")
    if class_path == UNSET:
        return UNSET
    module, _, name = str(class_path).rpartition(".")
    datamodule = getattr(importlib.import_module(module), name)
    names = getattr(importlib.import_module(datamodule.__module__), "VARIANT_NAMES", None)
    if names is None:
        return str(datamodule.name)
    variant = _at(config, "data.variant")
    if variant == UNSET:
        variant = inspect.signature(datamodule).parameters["variant"].default
    return str(names[variant])


def _value(config: Config, path: str) -> str:
    value = _at(config, path)
    if value == UNSET:
        return UNSET
    return json.dumps(value) if isinstance(value, dict | list | None) else str(value)


# (label, how to read it from a run's config): the settings a paper states for its runs.
SETTINGS: tuple[tuple[str, Callable[[Config], str]], ...] = (
    ("dataset", dataset_name),
    ("training images", lambda c: _value(c, "data.max_train_samples")),
    ("held-out validation images", lambda c: _value(c, "data.val_samples")),
    ("backbone", lambda c: _value(c, "model.backbone")),
    ("backbone arguments", lambda c: _value(c, "model.backbone_kwargs")),
    ("projector hidden widths", lambda c: _value(c, "model.projector_hidden_dims")),
    ("projector output width", lambda c: _value(c, "model.projector_out_dim")),
    ("epochs", lambda c: _value(c, "trainer.max_epochs")),
    ("batches per epoch", lambda c: _value(c, "trainer.limit_train_batches")),
    ("global batch size", lambda c: _value(c, "data.batch_size")),
    ("optimiser", lambda c: _value(c, "model.optimizer")),
    ("learning rate", lambda c: _value(c, "model.lr")),
    ("weight decay", lambda c: _value(c, "model.weight_decay")),
    ("warm-up epochs", lambda c: _value(c, "model.warmup_epochs")),
    ("CARE's λ (equivariance weight)", lambda c: _value(c, "model.equivariance_weight")),
    ("precision", lambda c: _value(c, "trainer.precision")),
)
LINEAR_SETTINGS: tuple[tuple[str, str], ...] = (
    ("linear readout", "model.readout"),
    ("linear features standardised", "model.standardize"),
    ("linear classifiers", "model.n_classifiers"),
    ("linear optimiser", "model.optimizer"),
    ("linear learning rate", "model.lr"),
    ("linear epochs", "trainer.max_epochs"),
    ("linear batch size", "data.dataset.batch_size"),
)


def _profile_configs(table: TableSpec, profile: Profile, experiments: Path) -> list[Config]:
    return [
        configured(cell.config, cell.overrides)
        for cell in plan_cells(table, profile, experiments)
        if Path(cell.config).is_file()
    ]


def _values(configs: list[Config], read: Callable[[Config], str]) -> str:
    return ", ".join(sorted({read(c) for c in configs}))


def _linear_configs(table: TableSpec, configs: list[Config], experiments: Path) -> list[Config]:
    names = {table.linear_configs.get(dataset_name(c)) for c in configs}
    return [configured(experiments / name, ()) for name in sorted(n for n in names if n)]


def differences(
    table: TableSpec, profile: Profile, experiments: Path
) -> list[tuple[str, str, str]]:
    """(setting, this profile's values, the paper profile's values) for each setting that
    differs, in :data:`SETTINGS` order, then the linear protocol's; ``[]`` for the paper
    profile itself or a table without one."""
    paper = table.profiles.get("paper")
    if paper is None or profile.name == paper.name:
        return []
    ours, theirs = (_profile_configs(table, p, experiments) for p in (profile, paper))
    if not ours or not theirs:
        return []
    rows = []
    for label, read in SETTINGS:
        mine, published = _values(ours, read), _values(theirs, read)
        if mine != published:
            rows.append((label, mine, published))
    if table.linear_eval != "none":
        ours_linear = _linear_configs(table, ours, experiments)
        theirs_linear = _linear_configs(table, theirs, experiments)
        for label, path in LINEAR_SETTINGS:
            mine = ", ".join(sorted({_value(c, path) for c in ours_linear}))
            published = ", ".join(sorted({_value(c, path) for c in theirs_linear}))
            if ours_linear and theirs_linear and mine != published:
                rows.append((label, mine, published))
    seeds = (len(profile.seeds), len(paper.seeds))
    if seeds[0] != seeds[1]:
        rows.append(("seeds per cell", str(seeds[0]), str(seeds[1])))
    return rows


def protocol_lines(table: TableSpec, profile: Profile, experiments: Path) -> list[str]:
    """The table's *Protocol differences* section (markdown lines, each led by a blank)."""
    if profile.name == "paper":
        return []
    rows = differences(table, profile, experiments)
    if "paper" not in table.profiles:
        return [
            "",
            "## Protocol differences from the paper",
            "",
            "This table has no `paper` profile (the paper publishes no runnable settings for "
            "it), so its settings are compared with none; they are those of its configs and "
            "the profile's description above.",
        ]
    if not rows:
        return []
    lines = [
        "",
        "## Protocol differences from the paper",
        "",
        f"Every setting in which this profile's runs differ from the `paper` profile's (the "
        f"papers' own configs), read from the configs each profile trains; '{UNSET}' is the "
        "method's or DataModule's own default. Values are listed over all cells of the table.",
        "",
        "| setting | this profile | paper profile |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {mine} | {published} |" for label, mine, published in rows]
    return lines
