"""The pretrained backbone a linear evaluation reads: from any checkpoint a user hands us.

Two kinds of file are accepted:

- a checkpoint written by ``lightning fit`` (any :class:`~ssl_geom.methods.SSLMethod`): the
  method is rebuilt by :func:`ssl_geom.analysis.load_method` and its ``backbone`` kept;
- a plain ``state_dict`` of a registered backbone (``torch.save(backbone.state_dict(), path)``),
  which needs the backbone's registry name to be rebuilt.

Both are first read by :func:`~ssl_geom.checkpoint_file.read_checkpoint`
(``torch.load(..., weights_only=True)``): a file that holds anything but tensors and plain
containers is refused before any of its code could run.

When a backbone name is configured as well, the checkpoint's weights must fit it exactly; a
mismatch is reported with the first differing keys at construction, not as a shape error in
the middle of an epoch. Weights (and buffers) that are not all finite -- a pretraining that
diverged, e.g. its ``on_exception.ckpt`` -- are refused, naming the first bad tensor: a
classifier on NaN features scores chance, which would look like a (bad) result.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ssl_geom.backbones import StructuredBackbone, build_backbone
from ssl_geom.checkpoint_file import read_checkpoint

_SHOWN_KEYS = 5
# What a linear evaluation accepts, for read_checkpoint's errors.
_EXPECTED = (
    "the last.ckpt that `lightning fit` wrote (<log_dir>/checkpoints/last.ckpt) or a backbone "
    "state dict saved with torch.save(backbone.state_dict(), path)"
)


def _is_lightning_checkpoint(payload: Any) -> bool:
    return (
        isinstance(payload, Mapping) and "state_dict" in payload and "hyper_parameters" in payload
    )


def _mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} {tuple(found[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if keys:
            more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
            parts.append(f"{label}: {', '.join(keys[:_SHOWN_KEYS])}{more}")
    return "; ".join(parts)


def _first_non_finite(state: Mapping[str, torch.Tensor]) -> str | None:
    """``"name (k of n values)"`` of the first floating tensor with a NaN or inf, if any."""
    for name, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                return f"{name} ({bad} of {tensor.numel()} values are NaN or infinite)"
    return None


def _refuse_non_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    bad = _first_non_finite(state)
    if bad is not None:
        raise ValueError(
            f"{source} holds non-finite weights, first {bad}: its pretraining diverged, and "
            "features of these weights would score chance. Evaluate a checkpoint written "
            "before the divergence (an earlier epoch=*.ckpt or last.ckpt of the run; "
            "on_exception.ckpt keeps the state at the failure), or pretrain again with a lower "
            "lr or a longer warm-up"
        )


def load_backbone(
    checkpoint: str | Path,
    backbone: str | None = None,
    backbone_kwargs: dict[str, Any] | None = None,
) -> StructuredBackbone:
    """The pretrained backbone stored in ``checkpoint``, on the CPU in eval mode.

    Args:
        checkpoint: a ``lightning fit`` checkpoint or a plain backbone state dict.
        backbone: registry name of the expected backbone; required for a plain state dict,
            optional for a Lightning checkpoint (which records its own). When given, the
            checkpoint's weights must match it key for key and shape for shape.
        backbone_kwargs: keyword arguments of that backbone (e.g. ``in_channels``).

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist (the message names it).
        ValueError: the file is not a checkpoint or holds more than tensors
            (:class:`~ssl_geom.checkpoint_file.CheckpointFileError`), a plain state dict
            comes without a backbone name, or the weights do not match the configured
            backbone (the message lists the first mismatched keys).
    """
    path = Path(checkpoint)
    payload = read_checkpoint(path, _EXPECTED)
    if _is_lightning_checkpoint(payload):
        from ssl_geom.analysis import load_method

        # A fresh context: under `lightning fit`, LightningCLI builds LinearEval inside a
        # context variable holding LinearEval's hyper-parameters, which the method's own
        # save_hyperparameters() would otherwise record instead of the method's (CARE then
        # fails reading hparams.n_split).
        found = contextvars.Context().run(load_method, path).backbone
        _refuse_non_finite(found.state_dict(), f"the backbone of {path}")
        if backbone is None:
            return found.eval()
        state, source = found.state_dict(), f"the backbone of {path}"
    elif isinstance(payload, Mapping) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        if backbone is None:
            raise ValueError(
                f"{path} is a plain state dict, which does not say which backbone it belongs "
                "to; set the backbone name (model.init_args.backbone, one of "
                "ssl_geom.backbones.list_backbones())"
            )
        state, source = dict(payload), f"the state dict {path}"
    else:
        raise ValueError(
            f"{path} is neither a `lightning fit` checkpoint (a dict with 'state_dict' and "
            "'hyper_parameters') nor a backbone state dict (a dict of parameter names to "
            f"tensors); it holds {_describe(payload)}. Pass {_EXPECTED}"
        )
    model = build_backbone(backbone, **(backbone_kwargs or {}))
    difference = _mismatch(model.state_dict(), state)
    if difference:
        raise ValueError(
            f"{source} does not match the configured backbone {backbone!r} "
            f"(kwargs {backbone_kwargs or {}}): {difference}. Configure the backbone the "
            "checkpoint was trained with, or leave the name unset for a `lightning fit` "
            "checkpoint"
        )
    _refuse_non_finite(state, source)
    model.load_state_dict(state)
    return model.eval()


def _describe(payload: Mapping[Any, Any]) -> str:
    """What a dict that is no checkpoint holds, for the error: its first keys and value types."""
    shown = [f"{key!r}: {type(value).__name__}" for key, value in list(payload.items())[:4]]
    more = f" and {len(payload) - 4} more" if len(payload) > 4 else ""
    return "an empty dict" if not shown else f"{{{', '.join(shown)}{more}}}"
