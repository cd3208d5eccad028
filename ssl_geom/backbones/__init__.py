"""Backbones returning structured feature maps ``(B, C, G, H, W)``; see ``base``."""

from .base import GROUPS, StructuredBackbone, structured_to_vector
from .registry import build_backbone, list_backbones, register_backbone

__all__ = [
    "GROUPS",
    "StructuredBackbone",
    "build_backbone",
    "list_backbones",
    "register_backbone",
    "structured_to_vector",
]
