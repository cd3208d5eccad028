"""The one vocabulary for the symmetry a backbone, a method or a view is about.

The names are the rows of the H-SSL paper's tables (Keller, Suau, Zappella, "Homomorphic
Self-Supervised Learning", arXiv:2211.08282): *Translation*, *Rotation*, *Scale*. The
same word is used everywhere the idea appears:

- a backbone's ``group`` is the group acting on its ``G`` axis *in addition to*
  translation, which every convolutional map has on its spatial axes. A plain CNN (and an
  MLP, a torchvision ResNet, the emulated ``*_cnn6x`` streams) therefore has the symmetry
  ``TRANSLATION``: no group axis beyond space. An emulated axis is flagged by the
  backbone's ``emulated_group_size``, not by another name;
- an H-SSL / F-SSL / A-SSL method's ``transformation`` is the symmetry whose fibers (or
  input transformations) make its positive pairs;
- a DataModule's group ``train_views`` are the A-SSL input transformations of that name.

``Symmetry`` is a ``str`` enum, so ``backbone.group == "rotation"`` and YAML strings keep
working. :data:`SymmetryName` is the same spellings as a ``Literal``, for arguments that
also take the plain string (type checkers and jsonargparse read it; ``tests/test_symmetry.py``
checks that it equals the enum's values). This module imports nothing from the package: it
is the bottom layer.
"""

from __future__ import annotations

import enum
from typing import Literal

SymmetryName = Literal["translation", "rotation", "scale"]


class Symmetry(str, enum.Enum):
    """A symmetry group of the H-SSL paper's tables; the value is its config spelling."""

    TRANSLATION = "translation"
    ROTATION = "rotation"
    SCALE = "scale"

    def __str__(self) -> str:
        return self.value


SYMMETRIES: tuple[str, ...] = tuple(s.value for s in Symmetry)
"""The config spellings, in declaration order: ``("translation", "rotation", "scale")``."""


def parse_symmetry(value: object, what: str) -> Symmetry:
    """``value`` (a :class:`Symmetry` or its string) as a :class:`Symmetry`, or a clear error.

    ``what`` names the setting in the message, e.g. ``"transformation"``.
    """
    if isinstance(value, Symmetry):
        return value
    if isinstance(value, str) and value in SYMMETRIES:
        return Symmetry(value)
    raise ValueError(
        f"unknown {what} {value!r}; valid choices: {', '.join(SYMMETRIES)} "
        "(the H-SSL paper's Translation, Rotation, Scale)"
    )
