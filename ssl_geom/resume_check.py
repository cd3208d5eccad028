"""A resumed run trains with the config's optimizer settings and lr schedule, or not at all.

``--ckpt_path`` makes Lightning restore the optimizer's param groups and the lr scheduler's
state from the checkpoint *over* what ``configure_optimizers`` just built from the config.
So a changed lr is silently replaced by the old one (while the new checkpoint's
hyper-parameters claim the new one), and a run extended with a larger
``trainer.max_epochs`` keeps the old schedule length: under warm-up + cosine every added
step trains at lr 0. :class:`ResumeCheck` (a default callback of the CLI) compares the two
before the first step:

- ``on_load_checkpoint``: keeps the checkpoint's param-group settings and scheduler states;
- ``on_fit_start`` (the config's optimizers are built, nothing is restored yet): any
  difference is refused, naming each setting with both values and the fixes, unless
  ``allow_changes`` (the CLI's ``--allow_changed_config true``);
- ``on_train_start`` (restored, no step taken yet): with ``allow_changes``, puts the config's
  settings back: each param group's hyper-parameters, each scheduler's settings (a schedule
  rebuilt for the config's length, its step counter continuing from the checkpoint's) and
  the lr of the current step under that schedule. The optimizer's moments and the step
  counters stay restored. The warning gives the lr before and after.

Each checkpoint also records ``trainer.max_epochs`` / ``max_steps`` (which the CLI compares
before building anything) and every change accepted on resuming, with its step, so that the
checkpoint says what was used.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

# Scheduler entries that count progress: kept as the checkpoint left them.
_PROGRESS = ("last_epoch", "_step_count")
# Entries not compared: progress, what follows from it, and the configured lr (compared as
# each param group's initial_lr).
_NOT_SETTINGS = frozenset(
    {*_PROGRESS, "_last_lr", "_is_initial", "_get_lr_called_within_step", "verbose", "base_lrs"}
)


def _plain(value: Any) -> Any:
    """Tuples as lists, so that settings that went through a checkpoint compare equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _group_settings(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in group.items() if k != "params"} for group in groups]


def _scheduler_settings(state: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in state.items() if k not in _NOT_SETTINGS}


def _differences(label: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{label} {key}: checkpoint {before.get(key)!r}, config {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def _closed_form_lrs(scheduler: LRScheduler) -> list[float]:
    """Each group's lr at the scheduler's current step, computed from its settings alone."""
    if isinstance(scheduler, LambdaLR):  # lightly's CosineWarmupScheduler among them
        step = scheduler.last_epoch
        return [
            float(base) * fn(step)
            for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        ]
    closed_form = getattr(scheduler, "_get_closed_form_lr", None)
    if closed_form is None:
        raise ValueError(
            f"cannot recompute the lr of {type(scheduler).__name__} at a resumed step; resume "
            "with the config the checkpoint was trained with"
        )
    return [float(lr) for lr in closed_form()]


class ResumeCheck(Callback):
    """Refuse, or with ``allow_changes`` apply, a resumed run's changed optimizer settings.

    Args:
        allow_changes: train on with the config's settings where they differ from the
            checkpoint's (``--allow_changed_config true``), instead of refusing.
    """

    def __init__(self, allow_changes: bool = False) -> None:
        self.allow_changes = allow_changes
        # Accepted on resuming: [{"global_step": s, "changes": ["lr: checkpoint .., config .."]}]
        self.config_changes: list[dict[str, Any]] = []
        # Hyper-parameter changes the CLI found; recorded with the step they apply from.
        self.model_changes: list[str] = []
        self.training_length: dict[str, Any] = {}
        self._restored: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        self._restored_step = 0
        self._configured: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        self._changes: list[str] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.training_length = {
                "max_epochs": trainer.max_epochs,
                "max_steps": trainer.max_steps,
            }

    def state_dict(self) -> dict[str, Any]:
        return {
            "training_length": dict(self.training_length),
            "config_changes": copy.deepcopy(self.config_changes),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.config_changes = copy.deepcopy(state_dict.get("config_changes", []))

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != "fit":
            return
        optimizers = [
            _group_settings(state["param_groups"])
            for state in checkpoint.get("optimizer_states", [])
        ]
        schedulers = [dict(state) for state in checkpoint.get("lr_schedulers", [])]
        self._restored = (optimizers, schedulers)
        self._restored_step = int(checkpoint.get("global_step", 0))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restored is None:
            return
        self._configured = (
            [_group_settings(opt.param_groups) for opt in trainer.optimizers],
            [copy.deepcopy(c.scheduler.state_dict()) for c in trainer.lr_scheduler_configs],
        )
        self._changes = self._compare(trainer)
        if not self._changes:
            return
        listing = "\n".join(f"  - {change}" for change in self._changes)
        if not self.allow_changes:
            raise ValueError(
                f"resuming from {trainer.ckpt_path} would train with the checkpoint's optimizer "
                f"settings and lr schedule, not the config's:\n{listing}\nLightning restores "
                "them from the checkpoint over the config's; a schedule made for fewer steps "
                "continues past its end at its final lr (0 for warmup_cosine). Resume with the "
                "trainer and model settings the checkpoint was trained with (config.yaml in its "
                "log folder), or pass --allow_changed_config true to continue from step "
                f"{self._restored_step} on the config's settings and schedule"
            )
        for config in trainer.lr_scheduler_configs:
            _closed_form_lrs(config.scheduler)  # refuse a scheduler we could not rebuild now

    def _compare(self, trainer: pl.Trainer) -> list[str]:
        assert self._restored is not None and self._configured is not None
        (old_optimizers, old_schedulers), (optimizers, schedulers) = (
            self._restored,
            self._configured,
        )
        if len(old_optimizers) != len(optimizers) or len(old_schedulers) != len(schedulers):
            return [
                f"optimizers/schedulers: checkpoint {len(old_optimizers)}/{len(old_schedulers)}, "
                f"config {len(optimizers)}/{len(schedulers)}"
            ]
        changes = []
        for old_groups, groups in zip(old_optimizers, optimizers, strict=True):
            if len(old_groups) != len(groups):
                changes.append(f"param groups: checkpoint {len(old_groups)}, config {len(groups)}")
                continue
            for i, (old, new) in enumerate(zip(old_groups, groups, strict=True)):
                scheduled = "initial_lr" in old or "initial_lr" in new
                keys = set(old) | set(new)
                if scheduled:
                    keys.discard("lr")  # the current lr follows the schedule
                label = f"param group {new.get('name', i)!r}"
                changes += _differences(
                    label, {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}
                )
        for old_state, state, config in zip(
            old_schedulers, schedulers, trainer.lr_scheduler_configs, strict=True
        ):
            label = f"lr schedule {type(config.scheduler).__name__}"
            changes += _differences(
                label, _scheduler_settings(old_state), _scheduler_settings(state)
            )
        return changes

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._configured is None or not (self._changes or self.model_changes):
            return
        if self._changes:
            self._apply_configured(trainer)
        self.config_changes.append(
            {"global_step": trainer.global_step, "changes": [*self.model_changes, *self._changes]}
        )

    def _apply_configured(self, trainer: pl.Trainer) -> None:
        assert self._configured is not None
        optimizers, schedulers = self._configured
        before = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        for optimizer, groups in zip(trainer.optimizers, optimizers, strict=True):
            for group, settings in zip(optimizer.param_groups, groups, strict=True):
                group.update(copy.deepcopy(settings))
        for config, state in zip(trainer.lr_scheduler_configs, schedulers, strict=True):
            scheduler = config.scheduler
            progress = {k: v for k, v in scheduler.state_dict().items() if k in _PROGRESS}
            scheduler.load_state_dict({**copy.deepcopy(state), **progress})
            lrs = _closed_form_lrs(scheduler)
            for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
            # What get_last_lr() (and LearningRateMonitor) reports.
            scheduler._last_lr = list(lrs)
        after = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        listing = "\n".join(f"  - {change}" for change in self._changes)
        rank_zero_warn(
            f"--allow_changed_config: resuming at step {trainer.global_step} with the config's "
            f"optimizer settings and lr schedule instead of the checkpoint's:\n{listing}\n"
            f"lr of each param group at this step: {before} -> {after}"
        )
