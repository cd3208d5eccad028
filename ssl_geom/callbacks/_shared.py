"""The one object through which the geometry callbacks of a Trainer share their work.

``WahbaError`` and ``RelativeEquivariance`` with equal settings need the same K augmented
embeddings; ``LabelMatch`` and ``FractionUnexplainedVariance`` the same two views; all of
them the same reference samples. The first geometry callback in ``trainer.callbacks`` owns a
:class:`SharedStore` and clears it at the start of every run (``fit``, ``validate``,
``test``); the others use that one (see ``GeometryCallback.setup``). Keys are *values* —
the reference-set spec, the transform object, the measurement settings — never ``id()``s.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SharedStore:
    """Values computed once and reused; a value with a stamp is recomputed when it changes."""

    def __init__(self) -> None:
        self._values: dict[Hashable, tuple[Hashable, Any]] = {}

    def clear(self) -> None:
        self._values.clear()

    def get(self, key: Hashable, compute: Callable[[], T], stamp: Hashable = None) -> T:
        """The value under ``key`` if it was computed with this ``stamp``, else ``compute()``.

        Embeddings of the current weights use ``(epoch, global_step)`` as the stamp; values
        that hold for the whole run (reference inputs, the default transform) use None.
        """
        if key in self._values and self._values[key][0] == stamp:
            return self._values[key][1]
        value = compute()
        self._values[key] = (stamp, value)
        return value
