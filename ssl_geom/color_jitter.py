"""SimCLR's colour jitter for a given channel count: the one builder data/ and callbacks/ share.

SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
arXiv:2002.05709, App. A) jitters brightness, contrast and saturation by ``0.8·s`` and hue by
``0.2·s`` for a strength ``s``. torchvision's ``ColorJitter`` accepts 1- or 3-channel images
only, and saturation and hue are undefined on one channel, so a grayscale image gets
brightness and contrast alone and any other channel count gets no jitter (``None``).

It sits below ``ssl_geom.data`` and ``ssl_geom.callbacks`` so both build the jitter from the
same lines (the callbacks must not import ``ssl_geom.data``).
"""

from __future__ import annotations

from torchvision.transforms import v2


def simclr_color_jitter(channels: int, strength: float) -> v2.ColorJitter | None:
    """SimCLR's ``ColorJitter`` of strength ``s`` for ``channels`` (None when it cannot apply)."""
    s = strength
    if channels == 3:
        return v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    if channels == 1:
        return v2.ColorJitter(brightness=0.8 * s, contrast=0.8 * s)
    return None
