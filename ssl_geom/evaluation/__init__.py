"""Final evaluation of a pretrained encoder: linear classifiers and kNN on frozen features.

- :class:`LinearEval` — the LightningModule (``lightning fit`` / ``lightning test`` with an
  ``experiments/linear_*.yaml`` config);
- :class:`LinearEvalData` — its DataModule, wrapping any ssl_geom dataset, caching the frozen
  features when the training transform is deterministic;
- :func:`evaluate_checkpoint` — both in one call, from Python;
- :func:`load_backbone` — the backbone of a ``lightning fit`` checkpoint or a state dict.
"""

from ssl_geom.evaluation.checkpoint import load_backbone
from ssl_geom.evaluation.data import LinearEvalData
from ssl_geom.evaluation.heads import ClassifierBank
from ssl_geom.evaluation.linear import LinearEval
from ssl_geom.evaluation.run import evaluate_checkpoint

__all__ = ["ClassifierBank", "LinearEval", "LinearEvalData", "evaluate_checkpoint", "load_backbone"]
