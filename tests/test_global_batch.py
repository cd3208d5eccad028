"""The global batch rule (``ssl_geom.global_batch``), and that data and methods share it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ssl_geom.data import MNISTDataModule
from ssl_geom.global_batch import per_process_batch_size
from ssl_geom.methods import SimCLR

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


@pytest.mark.parametrize(
    ("global_batch", "world_size", "share"), [(256, 1, 256), (256, 8, 32), (6, 3, 2)]
)
def test_each_process_takes_an_equal_share(global_batch: int, world_size: int, share: int) -> None:
    assert per_process_batch_size(global_batch, world_size) == share


def test_a_batch_that_does_not_split_is_refused_with_a_multiple_to_use() -> None:
    # 10 over 4 processes: the largest multiple of 4 not above 10 is 8.
    with pytest.raises(
        ValueError, match=r"^data.batch_size=10 is the global batch .* 4 .* e\.g\. 8$"
    ):
        per_process_batch_size(10, 4, "data.batch_size")
    # Below the world size the suggestion is the world size itself.
    with pytest.raises(ValueError, match=r"batch_size=3 .* multiple of 4, e\.g\. 4$"):
        per_process_batch_size(3, 4)


def test_no_processes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"world_size must be >= 1.*got 0"):
        per_process_batch_size(8, 0)


def test_datamodules_and_methods_refuse_with_the_same_rule() -> None:
    dm = MNISTDataModule(root="unused", batch_size=10, num_workers=0)
    with pytest.raises(ValueError) as data_error:
        dm.split_batch(4)
    model = SimCLR(batch_size=10, **TINY)
    model._trainer = SimpleNamespace(world_size=4)
    with pytest.raises(ValueError) as method_error:
        model.per_process_batch_size()
    # The same sentence; only the argument named differs.
    assert str(data_error.value) == f"data.{method_error.value}"
