"""ssl_geom: a Lightning framework for the geometry of self-supervised learning."""

__version__ = "0.1.0"
