"""Sources compose with torch's Subset and ConcatDataset (what the DataModules build from them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Subset

from ssl_geom.data.sources import ArraySource, FileSource, random_subset, unreadable_samples


def _numbered(n: int, first: int = 0) -> ArraySource:
    """Image i is filled with the value first + i, its label is first + i: easy to identify."""
    values = np.arange(first, first + n, dtype=np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (n, 1, 2, 2)).copy()
    return ArraySource(images, [values.astype(np.int64)])


def test_random_subset_is_seeded_kept_in_file_order_and_a_no_op_when_not_smaller() -> None:
    source = _numbered(20)
    subset = random_subset(source, 5, seed=3)
    assert isinstance(subset, Subset)
    labels = [subset[i][1][0] for i in range(len(subset))]
    # The same draw done directly: the first 5 of a seeded permutation, sorted.
    expected = sorted(torch.randperm(20, generator=torch.Generator().manual_seed(3))[:5].tolist())
    assert labels == expected
    assert random_subset(source, None, seed=3) is source
    assert random_subset(source, 20, seed=3) is source


def test_a_concatenation_reads_its_parts_in_order() -> None:
    both = ConcatDataset([_numbered(3), _numbered(2, first=100)])
    assert len(both) == 5
    assert [both[i][1] for i in range(5)] == [(0,), (1,), (2,), (100,), (101,)]
    assert int(both[4][0][0, 0, 0]) == 101


def test_verify_reads_through_subsets_and_concatenations(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    files = FileSource([str(broken)], [0])
    found = unreadable_samples([Subset(ConcatDataset([_numbered(2), files]), [0, 2])], threads=1)
    assert len(found) == 1
    assert found[0][0] == str(broken)
