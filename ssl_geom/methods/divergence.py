"""Stop a diverged run: the first non-finite loss is recorded on the device, checked rarely.

Why: a run whose loss turns NaN keeps "training" (every later step is NaN too), finishes
with exit code 0 and overwrites ``last.ckpt`` with NaN weights. Checking ``loss.isfinite()``
on the host every step would fix that but synchronise the GPU every step, so the monitor
records on the device instead (``torch.where``, no ``.item()``): the index of the first
step in the current window whose loss terms are not all finite, and those terms. One
host read (:meth:`DivergenceMonitor.check`) every few steps, at epoch ends and before a
checkpoint is written turns a recorded divergence into :class:`DivergedError`. The
step number and learning rate of each step in the window stay on the host (plain
Python values the loop already knows), so reporting them costs nothing on the device.

Hand-written: Lightning's ``detect_anomaly`` and ``EarlyStopping(check_finite=True)``
either synchronise every step or only look at a monitored epoch metric after the
checkpoint callbacks may already have saved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DivergedError(RuntimeError):
    """The training loss (or a logged loss term) became NaN or infinite."""


class DivergenceMonitor:
    """Records the first non-finite step of a window on the device; :meth:`check` raises.

    ``record`` is called once per training step with that step's loss terms, the global
    step and the learning rate; ``check`` reads the device record (one synchronisation),
    raises :class:`DivergedError` if a step diverged and otherwise starts a new window.
    """

    def __init__(self) -> None:
        self._names: tuple[str, ...] = ()
        self._window: list[tuple[int, float]] = []
        self._seen: torch.Tensor | None = None
        self._first_bad: torch.Tensor | None = None
        self._bad_values: torch.Tensor | None = None

    @property
    def pending(self) -> int:
        """Steps recorded since the last check."""
        return len(self._window)

    @torch.no_grad()
    def record(self, terms: dict[str, torch.Tensor], step: int, lr: float) -> None:
        """Note this step's scalar loss ``terms``; no host-device synchronisation."""
        names = tuple(terms)
        first = next(iter(terms.values()))
        # float32 keeps MPS working; float64 losses stay float64 (a 1e300 is finite there).
        dtype = torch.promote_types(torch.float32, first.dtype)
        values = torch.stack([v.detach().reshape(()).to(dtype) for v in terms.values()])
        if self._seen is None or names != self._names or self._seen.device != values.device:
            self._reset_device_state(names, values)
        assert self._seen is not None and self._first_bad is not None
        assert self._bad_values is not None
        is_first_bad = (~torch.isfinite(values).all()) & (self._first_bad < 0)
        self._first_bad.copy_(torch.where(is_first_bad, self._seen, self._first_bad))
        self._bad_values.copy_(torch.where(is_first_bad, values, self._bad_values))
        self._seen.add_(1)
        self._window.append((step, lr))

    def _reset_device_state(self, names: tuple[str, ...], values: torch.Tensor) -> None:
        if self._first_bad is not None and self._window:
            self.check()  # a window recorded under the old layout is read before it is replaced
        self._names = names
        self._seen = torch.zeros((), dtype=torch.long, device=values.device)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=values.device)
        self._bad_values = torch.zeros_like(values)

    def check(self, any_process: Callable[[bool], bool] | None = None) -> None:
        """Raise :class:`DivergedError` if a recorded step diverged; else start a new window.

        ``any_process`` combines the local verdict across processes (DDP), so that every
        process raises together instead of the healthy ones waiting forever.
        """
        index = -1 if self._first_bad is None else int(self._first_bad)
        diverged = index >= 0
        if any_process is not None:
            diverged = any_process(diverged)
        if not diverged:
            self._window.clear()
            if self._first_bad is not None:
                assert self._seen is not None
                self._seen.zero_()
            return
        if index < 0:
            raise DivergedError(
                "training diverged on another process (a loss term became NaN or infinite); "
                "see that process's error for the step and the loss terms"
            )
        assert self._bad_values is not None
        step, lr = self._window[index]
        terms = ", ".join(
            f"{name}={value:.6g}"
            for name, value in zip(self._names, self._bad_values.tolist(), strict=True)
        )
        raise DivergedError(
            f"training diverged at global step {step}: a loss term is not finite ({terms}) "
            f"with learning rate lr={lr:.6g}. Stopped before any later checkpoint was written. "
            "Fix: lower the learning rate (model.init_args.lr), lengthen the warm-up, or clip "
            "gradients (trainer.gradient_clip_val)."
        )
