"""Geometry callbacks that work in any Lightning project (see docs/callbacks.md).

They depend only on :mod:`ssl_geom.metrics` and find the encoder as ``pl_module.backbone``
and the projector as ``pl_module.projector`` / ``pl_module.projection_head`` unless told
otherwise. Logged names:

- :class:`ProjectorRank`: ``geometry/projector_rank``, ``geometry/embedding_rank``
- :class:`WahbaError`: ``geometry/wahba_mean``, ``geometry/wahba_max``
- :class:`RelativeEquivariance`: ``geometry/gamma_f``
- :class:`FractionUnexplainedVariance`: ``geometry/fvu``
- :class:`LabelMatch`: ``geometry/label_match`` (+ ``geometry/label_match_coarse``)
- :class:`KNNAccuracy`: ``knn/acc``

Augmentations default to the datamodule's ``same_params_transform()`` when it has one, else
:class:`BatchAugmentation` (torchvision ``transforms.v2``, one draw per batch).
"""

from ssl_geom.callbacks._protocol import ProbeBatch, default_batch_fn, to_vector
from ssl_geom.callbacks.augmentation import AUGMENTATION_KINDS, BatchAugmentation
from ssl_geom.callbacks.base import GeometryCallback
from ssl_geom.callbacks.equivariance import RelativeEquivariance
from ssl_geom.callbacks.knn import KNNAccuracy
from ssl_geom.callbacks.label_match import LabelMatch
from ssl_geom.callbacks.rank import ProjectorRank
from ssl_geom.callbacks.unexplained_variance import FractionUnexplainedVariance
from ssl_geom.callbacks.wahba import WahbaError

__all__ = [
    "AUGMENTATION_KINDS",
    "BatchAugmentation",
    "FractionUnexplainedVariance",
    "GeometryCallback",
    "KNNAccuracy",
    "LabelMatch",
    "ProbeBatch",
    "ProjectorRank",
    "RelativeEquivariance",
    "WahbaError",
    "default_batch_fn",
    "to_vector",
]
