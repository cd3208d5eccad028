"""Importing this module registers every built-in backbone."""

from . import e2cnn_rotation, hssl, resnet  # noqa: F401
