"""The fully supervised baseline of H-SSL Tables 1-2 ("Supervised" column).

App. A: the Supervised baselines use an *attached* linear layer, so the classification
loss back-propagates through the whole backbone. Here that layer is the base's
``self.probe`` (the backbone's App. A readout, then the linear classifier) trained without
``detach``: its validation accuracy is then logged as ``probe/acc`` like every other
method's, and tables read one metric.

The classifier has the probe's parameter group (``probe_lr``, no weight decay); set
``probe_lr`` to ``lr`` to train it like the backbone. No projection head is built.
"""

from __future__ import annotations

from typing import Any

import torch

from ssl_geom.methods.base import SSLMethod


class Supervised(SSLMethod):
    """Cross-entropy of an attached linear classifier on the backbone map (first view).

    Args:
        **kwargs: :class:`~ssl_geom.methods.base.SSLMethod` arguments; ``num_classes`` is
            required (the CLI links it from the data).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.probe is None:
            raise ValueError(
                "Supervised needs num_classes (the classifier's output size); set "
                "model.num_classes or link it from data.num_classes"
            )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Labelled step; replaces the base's (whose ``ssl_step`` hook sees no labels).

        Labels ``< 0`` (unlabelled samples) get zero weight, as in the probe.
        """
        views, y = self.unpack_train_batch(batch)
        loss = self.probe_loss(self.backbone(views[0]), y, self.probe_train_acc)
        n = y.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        lr = self._current_lr()
        self.log("lr", torch.tensor(lr), prog_bar=True, batch_size=n)
        self._divergence.record({"train/loss": loss}, self.global_step, lr)
        return loss
