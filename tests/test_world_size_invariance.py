"""The same objective on 1, 2 or 4 processes: one training step of every method (issue 23).

Every method of ``tests/world_size_testing.py`` (SimCLR, MoCo-v2, CARE on both bases, H-SSL
over translation, rotation and scale, F-SSL, A-SSL, Supervised, Frozen) takes one float64
SGD step on a global batch of 16 at world size 1 (a plain single-process Trainer) and at 2
and 4 gloo processes (Lightning DDP), each loading its contiguous share. With BatchNorm
synchronised and the same random draws for the same samples, the mean over processes of each
logged loss term equals the single-process value, and the weights after the step (every
parameter and buffer: running statistics, MoCo's queue) equal the single-process ones. Float64
keeps the tolerance tight; MoCo's contrastive logits are float32 by design, hence ``rel 1e-6``
on the terms. A method whose per-process loss were a mean over a local pool of negatives, or a
chunk of another size, misses by far more (``test_methods_ddp.py`` shows that size for InfoNCE).

MoCo's shuffled BatchNorm is defined per world size, so its step is pinned instead: at 2
processes the logged loss equals a recomputation in which each key is normalised with the
statistics of its process's share of the permuted key batch, and differs from the single-process
one (whose key BatchNorm splits the batch in ``bn_splits`` sub-batches).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.ddp_utils import run_distributed
from tests.world_size_testing import (
    CASES,
    build,
    global_batch,
    one_step,
    shuffled_step_entry,
    steps_entry,
)

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

INVARIANT = [name for name in CASES if name not in ("mocov2_shuffle_bn", "care_b32")]


def _mean_terms(ranks: list[dict], name: str) -> dict[str, float]:
    terms = [r[name]["terms"] for r in ranks]
    return {k: sum(t[k] for t in terms) / len(terms) for k in terms[0]}


def _differences(single: dict, ranks: list[dict], name: str) -> list[str]:
    """What differs between the single-process step of ``name`` and the multi-process one."""
    found = []
    expected_terms = single["terms"]
    got_terms = _mean_terms(ranks, name)
    if sorted(got_terms) != sorted(expected_terms):
        found.append(f"{name}: logged {sorted(got_terms)}, single process {sorted(expected_terms)}")
    for term, value in expected_terms.items():
        if got_terms.get(term) != pytest.approx(value, rel=1e-6, abs=1e-9):
            found.append(f"{name}: {term} {got_terms.get(term)} != {value}")
    for rank in ranks:
        for key, value in single["state"].items():
            got = rank[name]["state"][key]
            if not torch.allclose(got.double(), value.double(), rtol=1e-9, atol=1e-11):
                found.append(f"{name}: {key} differs by {(got - value).abs().max().item():.2e}")
    return found


@pytest.mark.parametrize("world_size", [2, 4])
def test_every_method_takes_the_single_process_step(world_size: int) -> None:
    single = {name: one_step(name, 1) for name in INVARIANT}
    ranks = run_distributed(steps_entry, world_size, INVARIANT)
    problems = [p for name in INVARIANT for p in _differences(single[name], ranks, name)]
    assert problems == []
    for name in INVARIANT:  # the step trained something: the comparison is not vacuous
        before = build(name).state_dict()
        after = single[name]["state"]
        moved = [k for k, v in before.items() if not torch.equal(v.double(), after[k].double())]
        assert any(".weight" in k for k in moved), name
    # CARE's chunks are 1/n_split of the global batch at every world size: 16 / 4 = 4 rows.
    assert {n for r in ranks for n in r["care_simclr"]["chunk_sizes"]} == {4}


def test_moco_shuffled_batch_norm_is_per_process_share_under_ddp() -> None:
    world_size = 2
    ranks = run_distributed(shuffled_step_entry, world_size)
    logged = sum(r["terms"]["train/moco"] for r in ranks) / world_size
    permutation = ranks[0]["permutation"]
    assert torch.equal(permutation, ranks[1]["permutation"])  # broadcast from rank 0
    assert sorted(permutation.tolist()) == list(range(16))

    # Recompute: same initial weights (mocov2 has whole-batch key BatchNorm, the same init),
    # queries with whole-batch BatchNorm (synchronised in the run), keys normalised per
    # process share of the permuted batch, then put back in sample order.
    model = build("mocov2").double().train()
    encoder = model.momentum_encoder
    views, _ = global_batch(CASES["mocov2_shuffle_bn"])
    with torch.no_grad():
        encoder.update(model.backbone, model.projector)
        queries = model.project(views[0])[1]
        shares = [views[1][rows] for rows in permutation.view(world_size, -1)]
        shuffled = torch.cat([encoder.projector(encoder.backbone.embed(x)) for x in shares])
        keys = F.normalize(shuffled[torch.argsort(permutation)].float(), dim=1)
        expected = encoder.contrast(queries, keys, encoder.queue)
    assert logged == pytest.approx(float(expected), rel=1e-6)

    single = one_step("mocov2_shuffle_bn", 1)["terms"]["train/moco"]
    # bn_splits sub-batches on one process: another loss, far outside the float tolerance
    assert single != pytest.approx(logged, rel=1e-4)
