"""F-SSL: DIM(L)/GIM-style contrast between spatial patches of one feature map (H-SSL Eq. 6).

H-SSL Sec. 3 shows Eq. 6 is Eq. 7 over the 2-D translation group with a base patch
``g0`` of the F-SSL patch size, so F-SSL runs H-SSL's code (:class:`FiberSSL`) with
``transformation="translation"`` and ``base_size = patch_size``; this class only names
it for the configs that reproduce F-SSL. Similarity is InfoNCE's cosine (the paper's
F-SSL), not DIM's log-bilinear critic.
"""

from __future__ import annotations

from typing import Any

from ssl_geom.methods.hssl import FiberSSL
from ssl_geom.symmetry import Symmetry


class FSSL(FiberSSL):
    """F-SSL (Eq. 6): two ``patch_size x patch_size`` patches of one un-augmented view.

    Args:
        patch_size: side of the patches in feature-map pixels (1 = DIM(L)'s single
            locations).
        max_distance: maximum Euclidean distance (pixels) between the two patch corners;
            ``None`` = independent patches.
        **kwargs: :class:`~ssl_geom.methods.hssl.FiberSSL` arguments (``temperature``,
            ``gather_distributed``) and :class:`~ssl_geom.methods.base.SSLMethod` ones.
    """

    def __init__(
        self,
        patch_size: int = 1,
        max_distance: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.build_bundles(Symmetry.TRANSLATION, patch_size, max_distance, False)
