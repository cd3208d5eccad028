"""LARS without host-device synchronisation: lightly's optimizer with a branch-free step.

Why not lightly's ``LARS.step`` as is: it decides per parameter whether to apply the
layer-wise trust ratio with ``if p_norm != 0 and g_norm != 0`` on two tensors. On a GPU
that Python ``bool`` of a device tensor is a host read, so every weight-decayed parameter
synchronises the device twice per step (``benchmarks/training_step.py --count-ops`` counts
them; the count: docs/benchmarks.md). A synchronising step cannot run
ahead of the GPU, so the Trainer's own per-step host work is added to every step instead of
overlapping with it (issue 11). Here the same decision is a ``torch.where`` on the device.

The update is lightly's, unchanged (You et al., "Large Batch Training of Convolutional
Networks", arXiv:1708.03888, Eq. 6, with PyTorch-style momentum): for a parameter ``p`` of a
group with weight decay ``β > 0`` whose norm and gradient norm are both non-zero,
``d = η·‖p‖ / (‖g‖ + β‖p‖ + ε) · (g + βp)``; otherwise ``d = g`` (no decay, no scaling,
exactly lightly's fall-through); then ``v ← μv + (1 − dampening)·d`` (``v = d`` at the first
step), ``d ← d + μv`` with Nesterov or ``d ← v`` without, and ``p ← p − lr·d``. Groups with
``β = 0`` get plain SGD with momentum, as in SimCLR and BYOL.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightly.utils.lars import LARS as LightlyLARS


class LARS(LightlyLARS):
    """lightly's LARS (same constructor, defaults and state) with a synchronisation-free step."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            weight_decay = group["weight_decay"]
            momentum = group["momentum"]
            dampening = group["dampening"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if weight_decay != 0:
                    p_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(d_p)
                    adapt = (p_norm != 0) & (g_norm != 0)
                    # Operation order as lightly's, so both round alike.
                    trust = p_norm / (g_norm + p_norm * weight_decay + group["eps"])
                    trust = trust * group["trust_coefficient"]
                    scale = torch.where(adapt, trust, torch.ones_like(trust))
                    decay = torch.where(adapt, weight_decay, 0.0).to(p.dtype)
                    d_p = (d_p + p * decay) * scale
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                    d_p = d_p.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.add_(d_p, alpha=-group["lr"])
        return loss
