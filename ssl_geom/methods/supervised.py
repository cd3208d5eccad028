"""The fully supervised baseline of H-SSL Tables 1-2 ("Supervised" column).

App. A: the Supervised baselines use an *attached* linear layer, so the classification
loss back-propagates through the whole backbone. Here that layer is the base's
``self.probe`` trained without ``detach``: its validation accuracy is then logged as
``probe/acc`` like every other method's, and tables read one metric. The readout is the
backbone's ``embed`` (max over the group axis, mean over space, App. A).

The classifier has the probe's parameter group (``probe_lr``, no weight decay); set
``probe_lr`` to ``lr`` to train it like the backbone. The projection head is unused and
frozen.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ssl_geom.methods.base import SSLMethod


class Supervised(SSLMethod):
    """Cross-entropy of an attached linear classifier on ``backbone.embed`` (first view).

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
        self.projector.requires_grad_(False)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Labelled step; replaces the base's (whose ``ssl_step`` hook sees no labels)."""
        views, y = self.unpack_train_batch(batch)
        keep = y >= 0
        if not bool(keep.any()):
            raise ValueError(
                "Supervised got a train batch without labels (all y < 0, e.g. STL10's "
                "unlabeled split); train it on a labelled split"
            )
        logits = self.probe(self.backbone.embed(views[0][keep]))
        loss = F.cross_entropy(logits, y[keep])
        self.probe_train_acc.update(logits.detach(), y[keep])
        n = int(keep.sum())
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("probe/train_loss", loss, batch_size=n)
        self.log(
            "probe/train_acc", self.probe_train_acc, on_step=False, on_epoch=True, batch_size=n
        )
        self.log("lr", self._current_lr(), prog_bar=True, batch_size=n)
        return loss
