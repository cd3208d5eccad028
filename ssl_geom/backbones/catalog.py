"""Look a backbone up by name: ``list_backbones`` and ``build_backbone``.

The built-in backbones are imported on the first look-up, not with the package, so that
``import ssl_geom.backbones`` does not import every architecture's libraries (``e2cnn``,
``torchvision``: seconds each). They register themselves through
:mod:`~ssl_geom.backbones.registry`, so this module, not the registry, loads them (the
registry importing them would be an import circle).
"""

from __future__ import annotations

from typing import Any

from ssl_geom.symmetry import parse_symmetry

from .base import StructuredBackbone
from .registry import registered_factories


def list_backbones() -> list[str]:
    """Sorted names of all registered backbones."""
    _load_builtin()
    return sorted(registered_factories())


def build_backbone(name: str, **kwargs: Any) -> StructuredBackbone:
    """Build the backbone registered as ``name`` with ``kwargs``."""
    _load_builtin()
    factories = registered_factories()
    if name not in factories:
        raise ValueError(
            f"unknown backbone {name!r}; registered backbones: {', '.join(sorted(factories))}. "
            "Register your own with @ssl_geom.backbones.register_backbone('name')."
        )
    model = factories[name](**kwargs)
    if not isinstance(model, StructuredBackbone):
        raise TypeError(
            f"backbone factory {name!r} returned {type(model).__name__}, "
            "expected a StructuredBackbone subclass"
        )
    # A registered backbone may spell its group as a string; methods compare Symmetry members.
    model.group = parse_symmetry(model.group, f"backbone {name!r} group")
    return model


def _load_builtin() -> None:
    """Import the modules that register the built-in backbones (idempotent)."""
    from . import builtin  # noqa: F401
