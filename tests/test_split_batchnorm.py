"""SplitBatchNorm: each sub-batch normalised by its own statistics, the wrapped layer kept.

Expected values come from an independent computation: a plain ``nn.BatchNorm`` with the
same parameters applied to each sub-batch (rows ``j, j+k, …``) on its own.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ssl_geom.methods.split_batchnorm import SplitBatchNorm, convert_split_batchnorm


def randomised(bn: nn.modules.batchnorm._BatchNorm) -> nn.modules.batchnorm._BatchNorm:
    """``bn`` with non-trivial affine parameters and running statistics."""
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn


@pytest.mark.parametrize(
    ("bn", "shape"),
    [
        (nn.BatchNorm1d(5), (12, 5)),
        (nn.BatchNorm2d(5), (12, 5, 3, 4)),
        (nn.BatchNorm3d(5), (12, 5, 4, 3, 3)),  # a (B, C, G, H, W) group feature map
    ],
)
def test_each_sub_batch_is_normalised_with_its_own_statistics(bn, shape) -> None:
    torch.manual_seed(0)
    bn = randomised(bn)
    reference = copy.deepcopy(bn)
    split = SplitBatchNorm.from_batchnorm(bn, num_splits=3)
    x = 3 * torch.randn(shape) + 1
    out = split(x)
    expected = torch.empty_like(x)
    means = []
    for j in range(3):
        sub = copy.deepcopy(reference)
        expected[j::3] = sub(x[j::3])
        means.append(sub.running_mean)
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, copy.deepcopy(reference)(x), atol=1e-3)  # not whole-batch BN
    # Running statistics: the mean of the three sub-batch updates.
    assert torch.allclose(split.running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert int(split.num_batches_tracked) == 1


def test_eval_mode_and_one_split_are_the_wrapped_batchnorm() -> None:
    torch.manual_seed(0)
    bn = randomised(nn.BatchNorm2d(4))
    x = torch.randn(8, 4, 3, 3)
    one = SplitBatchNorm.from_batchnorm(copy.deepcopy(bn), num_splits=1)
    assert torch.allclose(one(x), copy.deepcopy(bn)(x), atol=1e-6)
    split = SplitBatchNorm.from_batchnorm(bn, num_splits=4).eval()
    assert torch.allclose(split(x), bn.eval()(x), atol=1e-6)


def test_conversion_keeps_state_dict_names_shapes_and_parameter_order() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), randomised(nn.BatchNorm2d(4)), nn.ReLU())
    before = copy.deepcopy(model.state_dict())
    params = [p.clone() for p in model.parameters()]
    converted = convert_split_batchnorm(model, num_splits=2)
    assert isinstance(converted[1], SplitBatchNorm)
    after = converted.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(torch.equal(a, b) for a, b in zip(converted.parameters(), params, strict=True))


def test_a_batch_the_splits_cannot_divide_is_refused_with_the_sizes() -> None:
    split = SplitBatchNorm(4, num_splits=3)
    with pytest.raises(ValueError, match="num_splits=3 got a batch of 8 samples"):
        split(torch.randn(8, 4))
    with pytest.raises(ValueError, match="num_splits must be >= 1, got 0"):
        SplitBatchNorm(4, num_splits=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_with_bf16_autocast_and_channels_last_it_matches_per_sub_batch_batchnorm() -> None:
    torch.manual_seed(0)
    bn = randomised(nn.BatchNorm2d(16)).cuda()
    split = SplitBatchNorm.from_batchnorm(copy.deepcopy(bn), num_splits=8)
    x = (3 * torch.randn(64, 16, 8, 8, device="cuda") + 1).to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = split(x.bfloat16())
        expected = torch.cat([copy.deepcopy(bn)(x[j::8].bfloat16()) for j in range(8)])
    order = torch.cat([torch.arange(j, 64, 8) for j in range(8)])
    assert out.shape == x.shape
    assert torch.allclose(out[order].float(), expected.float(), atol=5e-2)
