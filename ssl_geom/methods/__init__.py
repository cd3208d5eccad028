"""Self-supervised methods as LightningModules; all extend :class:`SSLMethod` (see ``base``).

A-SSL baselines SimCLR and MoCo-v2, CARE on either, H-SSL / F-SSL / A-SSL over a
backbone's group axis, and the supervised and frozen-feature baselines.
"""

from ssl_geom.methods.assl import ASSL
from ssl_geom.methods.base import SSLMethod, SSLStepOutput
from ssl_geom.methods.care import CARE
from ssl_geom.methods.divergence import DivergedError
from ssl_geom.methods.frozen import Frozen
from ssl_geom.methods.fssl import FSSL
from ssl_geom.methods.hssl import HSSL, FiberSSL
from ssl_geom.methods.moco import MoCoV2, MomentumQueue
from ssl_geom.methods.simclr import SimCLR
from ssl_geom.methods.supervised import Supervised

__all__ = [
    "ASSL",
    "CARE",
    "FSSL",
    "HSSL",
    "DivergedError",
    "FiberSSL",
    "Frozen",
    "MoCoV2",
    "MomentumQueue",
    "SSLMethod",
    "SSLStepOutput",
    "SimCLR",
    "Supervised",
]
