"""Geometry callbacks that work in any Lightning project (see docs/callbacks.md).

They depend only on :mod:`ssl_geom.metrics` and find the encoder as ``pl_module.backbone``
and the projector as ``pl_module.projector`` / ``pl_module.projection_head`` unless told
otherwise. Each measures on a fixed *reference set* of samples. Logged names:

- :class:`ProjectorRank`: ``geometry/projector_rank``, ``geometry/embedding_rank``, their
  threshold-free ``*_effective_rank`` (and every ``*_rank_fraction``)
- :class:`WahbaError`: ``geometry/wahba_mean``, ``geometry/wahba_max`` (and, with
  ``test_set=True``, ``geometry/wahba_test_mean``, ``geometry/wahba_test_max``)
- :class:`RelativeEquivariance`: ``geometry/gamma_f``
- :class:`FractionUnexplainedVariance`: ``geometry/fvu``
- :class:`LabelMatch`: ``geometry/label_match`` (+ ``geometry/label_match_coarse``)
- :class:`KNNAccuracy`: ``knn/acc``

Augmentations default to the datamodule's ``same_params_transform()`` when it has one, else
:class:`BatchAugmentation` (torchvision ``transforms.v2``, one draw per batch).
"""

from ssl_geom.augment.batch import AUGMENTATION_KINDS, BatchAugmentation
from ssl_geom.callbacks._protocol import Samples, default_batch_fn, to_vector
from ssl_geom.callbacks._reference import ReferenceSet
from ssl_geom.callbacks.augmented import AugmentedGeometryCallback, SharedAugmentationCallback
from ssl_geom.callbacks.base import GeometryCallback
from ssl_geom.callbacks.equivariance import RelativeEquivariance
from ssl_geom.callbacks.knn import KNNAccuracy
from ssl_geom.callbacks.label_match import LabelMatch
from ssl_geom.callbacks.rank import ProjectorRank
from ssl_geom.callbacks.unexplained_variance import FractionUnexplainedVariance
from ssl_geom.callbacks.wahba import WahbaError, loader_augmented_embeddings, loader_wahba_errors

__all__ = [
    "AUGMENTATION_KINDS",
    "AugmentedGeometryCallback",
    "BatchAugmentation",
    "FractionUnexplainedVariance",
    "GeometryCallback",
    "KNNAccuracy",
    "LabelMatch",
    "ProjectorRank",
    "ReferenceSet",
    "RelativeEquivariance",
    "Samples",
    "SharedAugmentationCallback",
    "WahbaError",
    "default_batch_fn",
    "loader_augmented_embeddings",
    "loader_wahba_errors",
    "to_vector",
]
