"""One registry for every backbone, so methods and configs refer to them by name.

Users register their own backbones from their own files with the
``register_backbone`` decorator; nothing here has to be edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ssl_geom.symmetry import parse_symmetry

from .base import StructuredBackbone

BackboneFactory = Callable[..., StructuredBackbone]
F = TypeVar("F", bound=BackboneFactory)

_REGISTRY: dict[str, BackboneFactory] = {}


def register_backbone(name: str, *, overwrite: bool = False) -> Callable[[F], F]:
    """Decorator registering a class or factory returning a ``StructuredBackbone``.

    Registering a name twice is an error unless ``overwrite=True``, so two
    plugins cannot silently shadow each other.
    """

    def decorator(factory: F) -> F:
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not factory:
            raise ValueError(
                f"backbone {name!r} is already registered; pass overwrite=True to replace it"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_backbones() -> list[str]:
    """Sorted names of all registered backbones."""
    _load_builtin()
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs: Any) -> StructuredBackbone:
    """Build the backbone registered as ``name`` with ``kwargs``."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backbone {name!r}; registered backbones: {', '.join(sorted(_REGISTRY))}. "
            "Register your own with @ssl_geom.backbones.register_backbone('name')."
        )
    model = _REGISTRY[name](**kwargs)
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
