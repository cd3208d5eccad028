"""Self-supervised methods as LightningModules; all extend :class:`SSLMethod` (see ``base``)."""

from ssl_geom.methods.base import SSLMethod, SSLStepOutput

__all__ = ["SSLMethod", "SSLStepOutput"]
