"""One registry for every backbone, so methods and configs refer to them by name.

Users register their own backbones from their own files with the
``register_backbone`` decorator; nothing here has to be edited. Looking a name up
(:mod:`~ssl_geom.backbones.catalog`) is a module of its own: it loads the built-in
backbones, whose modules import this one to register themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

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


def registered_factories() -> Mapping[str, BackboneFactory]:
    """A read-only view of the names registered so far (built-ins only once loaded)."""
    return MappingProxyType(_REGISTRY)
