"""PartialConv2d against nn.Conv2d, a hand-computed holed case, the mask update and autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inpaintaff.nets.partialconv import PartialConv2d


def _pair(cin=2, cout=3, k=3, stride=1, bias=True):
    torch.manual_seed(0)
    pc = PartialConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)
    conv.load_state_dict(pc.state_dict())
    return pc, conv


@pytest.mark.parametrize("stride", [1, 2])
def test_all_ones_mask_equals_conv2d_in_the_interior(stride):
    pc, conv = _pair(stride=stride)
    x = torch.randn(2, 2, 9, 9)
    out, new = pc(x, torch.ones(2, 1, 9, 9))
    ref = conv(x)
    # At the border the zero padding counts as unknown and is renormalised; inside they agree.
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert torch.all(new == 1)
    out_none, _ = pc(x)  # mask=None is exactly Conv2d, borders included
    torch.testing.assert_close(out_none, ref)


def test_all_ones_mask_without_padding_equals_conv2d_everywhere():
    torch.manual_seed(1)
    pc = PartialConv2d(3, 4, 3, padding=0)
    conv = nn.Conv2d(3, 4, 3, padding=0)
    conv.load_state_dict(pc.state_dict())
    x = torch.randn(1, 3, 7, 8)
    torch.testing.assert_close(pc(x, torch.ones(1, 3, 7, 8))[0], conv(x), rtol=1e-5, atol=1e-5)


def test_hand_computed_holed_case():
    pc = PartialConv2d(1, 1, 3, padding=0, bias=True)
    with torch.no_grad():
        pc.weight.fill_(1.0)
        pc.bias.fill_(0.5)
    x = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3)  # 0..8
    m = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=torch.float32).view(1, 1, 3, 3)
    out, new = pc(x, m)
    # known values 0, 2, 4, 8: W·(X⊙M) = 14, sum(M) = 4, k = 9 -> 14 * 9/4 + 0.5
    assert out.item() == pytest.approx(14 * 9 / 4 + 0.5)
    assert new.item() == 1.0
    out0, new0 = pc(x, torch.zeros_like(m))
    assert out0.item() == 0.0 and new0.item() == 0.0  # no valid pixel: 0, bias included


def test_multichannel_mask_counts_channels():
    pc = PartialConv2d(2, 1, 1, padding=0, bias=False)
    with torch.no_grad():
        pc.weight.fill_(1.0)
    x = torch.tensor([3.0, 5.0]).view(1, 2, 1, 1)
    m = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    out, new = pc(x, m)
    assert out.item() == pytest.approx(3.0 * 2 / 1)  # k = C·kh·kw = 2, sum(M) = 1
    # single-channel mask broadcast: both channels known -> plain sum
    out1, _ = pc(x, torch.ones(1, 1, 1, 1))
    assert out1.item() == pytest.approx(8.0)


def test_mask_update_at_borders_and_holes():
    pc = PartialConv2d(1, 1, 3, padding=1)
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 0, 0] = 1  # only the corner is known
    _, new = pc(torch.randn(1, 1, 5, 5), m)
    expect = torch.zeros(5, 5)
    expect[:2, :2] = 1  # 3x3 windows around (0..1, 0..1) see the corner
    torch.testing.assert_close(new[0, 0], expect)
    pc2 = PartialConv2d(1, 1, 3, stride=2, padding=1)
    m2 = torch.zeros(1, 1, 6, 6)
    m2[0, 0, 5, 5] = 1
    _, new2 = pc2(torch.randn(1, 1, 6, 6), m2)
    expect2 = torch.zeros(3, 3)
    expect2[2, 2] = 1  # output (2,2) covers input rows/cols 3..5
    torch.testing.assert_close(new2[0, 0], expect2)


def test_hidden_values_do_not_matter():
    pc, _ = _pair()
    x = torch.randn(1, 2, 8, 8)
    m = (torch.rand(1, 1, 8, 8) > 0.5).float()
    x2 = torch.where(m.bool(), x, torch.randn_like(x) * 100)
    torch.testing.assert_close(pc(x, m)[0], pc(x2, m)[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_is_safe(dtype):
    pc, _ = _pair(cin=8, cout=4, k=7)
    x = torch.randn(1, 8, 16, 16)
    m = torch.zeros(1, 1, 16, 16)
    m[..., 3, 3] = 1  # one known pixel: ratio k/sum(M) = 49 per channel
    ref, ref_mask = pc(x, m)
    with torch.autocast("cpu", dtype=dtype):
        out, new = pc(x, m)
    assert new.dtype == torch.float32 and torch.equal(new, ref_mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=5e-2, atol=5e-2)


def test_bad_mask_shape_is_rejected():
    pc, _ = _pair(cin=2)
    with pytest.raises(ValueError, match="mask"):
        pc(torch.randn(1, 2, 4, 4), torch.ones(1, 3, 4, 4))


def test_forward_counts_equals_multichannel_mask():
    torch.manual_seed(2)
    pc = PartialConv2d(5, 3, 3, padding=1)
    a, b = torch.randn(2, 2, 8, 8), torch.randn(2, 3, 8, 8)
    ma, mb = (torch.rand(2, 1, 8, 8) > 0.5).float(), (torch.rand(2, 1, 8, 8) > 0.3).float()
    full_mask = torch.cat([ma.expand(-1, 2, -1, -1), mb.expand(-1, 3, -1, -1)], 1)
    ref, ref_mask = pc(torch.cat([a, b], 1), full_mask)
    out, new = pc.forward_counts(torch.cat([a * ma, b * mb], 1), 2 * ma + 3 * mb)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(new, ref_mask)
