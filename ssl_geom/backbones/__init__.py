"""Backbones returning structured feature maps ``(B, C, G, H, W)``; see ``base``."""

from ssl_geom.symmetry import Symmetry

from .base import StructuredBackbone, structured_to_vector
from .catalog import build_backbone, list_backbones
from .registry import register_backbone

__all__ = [
    "StructuredBackbone",
    "Symmetry",
    "build_backbone",
    "list_backbones",
    "register_backbone",
    "structured_to_vector",
]
