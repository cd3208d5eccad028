"""Say so when a GPU-sized training config resolved to the CPU, before its first step.

The paper configs say ``accelerator: auto`` and ``precision: bf16-mixed`` / ``16-mixed``:
on a machine without a GPU, Lightning resolves them to the CPU and keeps the half precision,
and one step of a paper batch through a ResNet-50 takes many minutes and tens of GB (or is
killed for memory) with nothing saying why. :func:`cpu_fit_warning` returns the explanation:
the estimated memory of one training step, and the overrides of a CPU smoke test.

The estimate (:func:`activation_bytes`) is measured, not guessed, and costs no compute: the
backbone runs once on 1 and once on 2 images on the ``meta`` device (shapes only), and every
tensor autograd saves for the backward pass is counted. Two sizes separate what grows with
the batch from what does not (weights saved for backward, filters expanded from a basis). It
is a lower bound of the real peak: the projector, the loss and the allocator come on top.
"""

from __future__ import annotations

import os

import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from torch import nn
from torch.func import functional_call

from ssl_geom.data import SSLDataModule
from ssl_geom.methods import SSLMethod

HALF_PRECISIONS = ("16-mixed", "bf16-mixed", "16-true", "bf16-true")
# A step that needs more than this share of the machine's memory is a GPU-sized config.
MEMORY_SHARE = 0.5
# Bytes per parameter of a training step besides activations: fp32 weight, gradient and two
# optimizer slots (Adam's moments; SGD/LARS keep one).
BYTES_PER_PARAMETER = 4 * 4
SMOKE_TEST_BATCH = 32
SMOKE_TEST = (
    f"--trainer.precision 32-true --data.init_args.batch_size {SMOKE_TEST_BATCH} "
    "--trainer.fast_dev_run true"
)


def activation_bytes(module: nn.Module, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(per image, fixed)``: bytes autograd saves in a float32 forward of ``module``.

    Traced on the ``meta`` device in eval mode (no compute, no change to any buffer).
    """
    state = {
        name: torch.empty_like(p, device="meta").requires_grad_(p.requires_grad)
        for name, p in module.named_parameters()
    }
    state.update({name: torch.empty_like(b, device="meta") for name, b in module.named_buffers()})

    def saved(n: int) -> int:
        total = 0

        def count(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        images = torch.empty(n, *image_shape, device="meta")
        training = module.training
        try:
            with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t), torch.enable_grad():
                functional_call(module.eval(), state, (images,))
        finally:
            module.train(training)
        return total

    one, two = saved(1), saved(2)
    return two - one, 2 * one - two


def _machine_memory() -> int | None:
    """Physical memory in bytes, where the OS tells it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def cpu_fit_warning(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule
) -> str | None:
    """Why this ``fit`` on the CPU is GPU-sized, with the smoke-test overrides; else ``None``.

    GPU-sized: half precision (emulated, slow on a CPU), or an estimated step of more than
    :data:`MEMORY_SHARE` of the machine's memory. Only SSL methods on an ssl_geom DataModule
    are estimated (a linear evaluation's backbone is frozen and runs without gradients).
    """
    if not isinstance(trainer.accelerator, CPUAccelerator):
        return None
    if not isinstance(model, SSLMethod) or not isinstance(datamodule, SSLDataModule):
        return None
    shape = (datamodule.in_channels, datamodule.image_size, datamodule.image_size)
    try:
        per_image, fixed = activation_bytes(model.backbone, shape)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None  # a backbone the meta device cannot trace: no estimate, no claim
    views = datamodule.n_views + int(datamodule.include_original)
    batch = datamodule.per_process_batch_size
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def step(images: int) -> float:
        return images * per_image + fixed + parameters * BYTES_PER_PARAMETER

    estimate = step(batch * views)
    memory = _machine_memory()
    half = trainer.precision in HALF_PRECISIONS
    if not half and (memory is None or estimate <= MEMORY_SHARE * memory):
        return None
    smoke = step(min(batch, SMOKE_TEST_BATCH) * views)
    of_memory = f" of this machine's {_gib(memory)}" if memory else ""
    precision = (
        f" in precision {trainer.precision} (emulated on a CPU: many times slower than float32)"
        if half
        else ""
    )
    return (
        f"this config is sized for a GPU but runs on the CPU{precision}. One training step of "
        f"{batch} images x {views} views through {model.hparams.get('backbone')} needs about "
        f"{_gib(estimate)}{of_memory} (an estimate: the activations a float32 forward keeps for "
        f"backward, traced on 1 and 2 images and scaled to {batch * views}, plus weights, "
        f"gradients and optimizer state of {parameters / 1e6:.1f} M parameters; the projector "
        f"and loss come on top). For a CPU smoke test pass {SMOKE_TEST} (about {_gib(smoke)} "
        "a step); for the real run use a GPU."
    )
