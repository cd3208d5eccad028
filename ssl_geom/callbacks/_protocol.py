"""How a geometry callback finds the encoder, the projector, the inputs and the labels.

The callbacks must work in anyone's Lightning project, so nothing here imports
``ssl_geom.methods`` or ``ssl_geom.data``; a module only has to look like one of:

- ``pl_module.backbone`` (the encoder) and ``pl_module.projector`` or lightly's
  ``pl_module.projection_head``;
- or any attribute names / callables the user passes instead.

Encoder outputs are reduced to one vector per sample (see :func:`to_vector`) so that a
plain CNN, a torchvision ResNet and an ``ssl_geom`` structured backbone all work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning.pytorch import LightningModule
from torch import Tensor, nn

ModuleSpec = str | Callable[[Tensor], Tensor] | None
ENCODER_NAMES = ("backbone",)
PROJECTOR_NAMES = ("projector", "projection_head")


@dataclass
class Samples:
    """Inputs and labels of some samples: ``labels`` holds ``y`` and, when present, ``y_coarse``.

    What ``batch_fn`` returns for one batch, and what a callback's reference set holds.
    """

    x: Tensor
    labels: list[Tensor]


BatchFn = Callable[[Any], Samples]


def default_batch_fn(batch: Any) -> Samples:
    """Read ``x`` and labels from ``(x, y)``, ``(x, y, y_coarse)``, ``(views, y)`` or ``x``.

    For ``(views, y)`` (an SSL training batch whose first element is a list of views) the
    first view is taken as the input.
    """
    if isinstance(batch, Tensor):
        return Samples(batch, [])
    if isinstance(batch, Sequence) and len(batch) >= 1:
        x = batch[0]
        if isinstance(x, Sequence) and not isinstance(x, Tensor) and len(x) > 0:
            x = x[0]
        labels = [y for y in batch[1:] if isinstance(y, Tensor)]
        if isinstance(x, Tensor):
            return Samples(x, labels)
    raise ValueError(
        f"cannot read inputs from a batch of type {type(batch).__name__}; the default reader "
        "expects (x, y), (x, y, y_coarse), (views, y) or a tensor. Pass batch_fn=... "
        "returning ssl_geom.callbacks.Samples(x, [labels...])"
    )


def _attribute(pl_module: LightningModule, path: str) -> Any:
    obj: Any = pl_module
    for part in path.split("."):
        if not hasattr(obj, part):
            raise AttributeError(part)
        obj = getattr(obj, part)
    return obj


def resolve(
    pl_module: LightningModule, spec: ModuleSpec, defaults: Sequence[str], role: str
) -> Callable[[Tensor], Tensor]:
    """Return the callable named by ``spec`` (dotted attribute, callable or default names)."""
    if callable(spec) and not isinstance(spec, str):
        return spec
    names = [spec] if isinstance(spec, str) else list(defaults)
    for name in names:
        try:
            found = _attribute(pl_module, name)
        except AttributeError:
            continue
        if not callable(found):
            raise ValueError(f"{role} {name!r} of {type(pl_module).__name__} is not callable")
        return found
    hint = f"{role}='attribute.path' or {role}=callable"
    raise ValueError(
        f"{type(pl_module).__name__} has no {role} attribute {' or '.join(map(repr, names))}; "
        f"pass {hint}"
    )


def to_vector(out: Tensor) -> Tensor:
    """One embedding vector per sample from an encoder output.

    ``(B, D)`` is kept; ``(B, C, G, H, W)`` (a structured map) is max-pooled over ``G``
    then averaged over ``H, W`` (the H-SSL readout); ``(B, C, H, W)`` is averaged over
    ``H, W`` (global average pooling); anything else is flattened to ``(B, -1)``.
    """
    if not isinstance(out, Tensor):
        raise ValueError(
            f"the encoder must return one tensor of features, got {type(out).__name__}; pass "
            "encoder=callable returning the features, e.g. encoder=lambda x: "
            "model.backbone(x)[0] for a backbone that returns a tuple"
        )
    if out.ndim == 2:
        return out
    if out.ndim == 5:
        return out.amax(dim=2).mean(dim=(2, 3))
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    return out.flatten(1)


def encoder_fn(pl_module: LightningModule, spec: ModuleSpec) -> Callable[[Tensor], Tensor]:
    """``x -> (B, D)``: the encoder's ``embed`` method when it has one, else pooled output."""
    encoder = resolve(pl_module, spec, ENCODER_NAMES, "encoder")
    embed = getattr(encoder, "embed", None)
    if isinstance(encoder, nn.Module) and callable(embed):
        return embed
    return lambda x: to_vector(encoder(x))


def find_linear(module: Any, role: str = "projector") -> nn.Linear:
    """The first ``nn.Linear`` inside ``module`` (in registration order)."""
    if isinstance(module, nn.Module):
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                return sub
    raise ValueError(
        f"the {role} ({type(module).__name__}) contains no nn.Linear; pass layer='attr.path' "
        "naming the linear layer whose weight to analyse"
    )


def count_linear(module: Any) -> int:
    """Number of ``nn.Linear`` layers in ``module`` (0 for a plain callable)."""
    if not isinstance(module, nn.Module):
        return 0
    return sum(isinstance(m, nn.Linear) for m in module.modules())


def linear_layer(pl_module: LightningModule, layer: str | None, projector: ModuleSpec) -> nn.Linear:
    """The linear layer named by ``layer``, else the first ``nn.Linear`` of the projector."""
    if layer is not None:
        try:
            found = _attribute(pl_module, layer)
        except AttributeError:
            raise ValueError(f"{type(pl_module).__name__} has no attribute {layer!r}") from None
        if not isinstance(found, nn.Linear):
            raise ValueError(f"layer {layer!r} is a {type(found).__name__}, expected nn.Linear")
        return found
    return find_linear(resolve(pl_module, projector, PROJECTOR_NAMES, "projector"))
