"""ssl_geom.augment: every way the package makes an augmented view, in one place.

It sits below ``ssl_geom.data``, ``ssl_geom.methods`` and ``ssl_geom.callbacks`` and imports
none of them, so all three can use it.

- :mod:`~ssl_geom.augment.params`: SimCLR parameters and presets (geometry paper Table 2,
  MoCo-v2), the kinds of view (H-SSL groups, CARE's photometric pairs);
- :mod:`~ssl_geom.augment.ops`: the CPU ``transforms.v2`` ops and per-sample pipelines;
- :mod:`~ssl_geom.augment.device`: SimCLR views made on the training device, one draw per
  sample or per group;
- :mod:`~ssl_geom.augment.same_params`: one draw per batch (CARE's pairs, the Wahba error);
- :mod:`~ssl_geom.augment.batch`: the callbacks' default for DataModules of unknown
  normalisation;
- :mod:`~ssl_geom.augment.augmentation`: one DataModule's augmentations as one object
  (``dm.augmentation``).
"""

from ssl_geom.augment.augmentation import AUGMENT_ON, Augmentation, AugmentOn
from ssl_geom.augment.batch import AUGMENTATION_KINDS, BatchAugmentation
from ssl_geom.augment.device import DeviceSameParams, DeviceSimCLRAugment
from ssl_geom.augment.ops import (
    RandomCyclicRotation,
    RandomRot90,
    group_ops,
    photometric_ops,
    simclr_color_jitter,
    simclr_ops,
    to_normalised,
    view_pipeline,
)
from ssl_geom.augment.params import (
    GROUP_VIEWS,
    MOCOV2_PARAMS,
    PAIR_KINDS,
    STRENGTHS,
    PairKind,
    SimCLRParams,
    Strength,
    simclr_params,
)
from ssl_geom.augment.same_params import SameParams, SameParamsTransform, as_same_params

__all__ = [
    "AUGMENTATION_KINDS",
    "AUGMENT_ON",
    "GROUP_VIEWS",
    "MOCOV2_PARAMS",
    "PAIR_KINDS",
    "STRENGTHS",
    "AugmentOn",
    "Augmentation",
    "BatchAugmentation",
    "DeviceSameParams",
    "DeviceSimCLRAugment",
    "PairKind",
    "RandomCyclicRotation",
    "RandomRot90",
    "SameParams",
    "SameParamsTransform",
    "SimCLRParams",
    "Strength",
    "as_same_params",
    "group_ops",
    "photometric_ops",
    "simclr_color_jitter",
    "simclr_ops",
    "simclr_params",
    "to_normalised",
    "view_pipeline",
]
