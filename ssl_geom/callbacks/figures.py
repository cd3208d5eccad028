"""Optional TensorBoard figures (off by default): spectra over training, cosine histograms.

Only the process with global rank 0 writes, and only to a ``TensorBoardLogger`` among the
trainer's loggers; with no such logger the figure is silently skipped (the scalars are
still logged everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor


def tensorboard(trainer: Trainer) -> Any | None:
    """The ``SummaryWriter`` of the first TensorBoard logger on rank 0, else None."""
    if trainer.global_rank != 0:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def log_spectra(
    trainer: Trainer, tag: str, history: Sequence[tuple[int, Tensor]], ylabel: str
) -> None:
    """One line per recorded epoch of a descending spectrum, log scale (geometry paper Fig. 4)."""
    writer = tensorboard(trainer)
    if writer is None or not history:
        return
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    # A bare Figure (no pyplot): no global backend switch and no figure registry to leak into.
    figure = Figure(figsize=(5, 3.5))
    axis = figure.subplots()
    colours = colormaps["viridis"]
    for i, (epoch, spectrum) in enumerate(history):
        shade = colours(i / max(len(history) - 1, 1))
        values = spectrum.clamp_min(1e-12).cpu().numpy()
        axis.plot(range(1, len(values) + 1), values, color=shade, label=f"epoch {epoch}")
    axis.set_yscale("log")
    axis.set_xlabel("index")
    axis.set_ylabel(ylabel)
    if len(history) <= 8:
        axis.legend(fontsize="small")
    figure.tight_layout()
    writer.add_figure(tag, figure, global_step=trainer.global_step, close=False)


def log_histogram(trainer: Trainer, tag: str, values: Tensor) -> None:
    """A TensorBoard histogram of ``values`` at the current global step."""
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_histogram(tag, values.detach().cpu(), global_step=trainer.global_step)
