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
the middle of an epoch.
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
        if backbone is None:
            return found.eval()
        state, source = found.state_dict(), f"the backbone of {path}"
    elif isinstance(payload, Mapping) and all(
        isinstance(v, torch.Tensor) for v in payload.values()
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
            f"'hyper_parameters') nor a backbone state dict (a dict of tensors); got "
            f"{type(payload).__name__}"
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
    model.load_state_dict(state)
    return model.eval()
