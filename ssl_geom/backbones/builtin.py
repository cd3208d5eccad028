"""Importing this module registers every built-in backbone."""

from . import hssl, resnet  # noqa: F401
