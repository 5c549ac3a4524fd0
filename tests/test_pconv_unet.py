"""The partial-conv U-Net: shapes for any size, independence from hidden pixels, gradients."""

from __future__ import annotations

import pytest
import torch

from inpaintaff.nets.pconv_unet import PConvUNet


@pytest.fixture
def net():
    torch.manual_seed(0)
    return PConvUNet(1, widths=(8, 16, 16), kernel_sizes=(5, 3, 3))


@pytest.mark.parametrize("hw", [(16, 16), (13, 21), (7, 5)])
def test_output_shape_any_size(net, hw):
    x = torch.rand(2, 1, *hw)
    known = (torch.rand(2, 1, *hw) > 0.3).float()
    assert net(x, known).shape == x.shape


@pytest.mark.parametrize("train", [False, True])
def test_output_independent_of_hidden_pixels(net, train):
    net.train(train)
    x = torch.rand(3, 1, 19, 24)
    known = (torch.rand(3, 1, 19, 24) > 0.5).float()
    x2 = torch.where(known.bool(), x, torch.randn_like(x) * 50)
    with torch.no_grad():
        a, b = net(x, known), net(x2, known)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert not torch.allclose(a, net(torch.rand_like(x), known))  # it does depend on the known ones


def test_multichannel_input():
    torch.manual_seed(0)
    net = PConvUNet(3, widths=(8, 16), kernel_sizes=(3, 3)).eval()
    x = torch.rand(1, 3, 10, 12)
    known = (torch.rand(1, 3, 10, 12) > 0.5).float()
    out = net(x, known)
    assert out.shape == x.shape
    x2 = torch.where(known.bool(), x, torch.rand_like(x))
    torch.testing.assert_close(out, net(x2, known))


def test_gradients_reach_all_parameters(net):
    x = torch.rand(2, 1, 16, 16)
    known = (torch.rand(2, 1, 16, 16) > 0.5).float()
    net(x, known).abs().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_paper_widths_build():
    net = PConvUNet(1)  # 64, 128, 256, 512, 512
    assert net.depth == 4 and net.multiple == 16
    assert [b.conv.out_channels for b in net.enc] == [64, 128, 256, 512, 512]


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_sizes"):
        PConvUNet(1, widths=(8, 16), kernel_sizes=(4, 3))
    net = PConvUNet(1, widths=(8, 16))
    with pytest.raises(ValueError, match="image"):
        net(torch.rand(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="known"):
        net(torch.rand(1, 1, 8, 8), torch.ones(1, 1, 8, 9))


def test_decoder_matches_liu_multichannel_mask_formulation(net):
    """The count-based skip path equals concatenating features and full per-channel masks."""
    import torch.nn.functional as F

    net.eval()
    x = torch.rand(2, 1, 16, 16)
    known = (torch.rand(2, 1, 16, 16) > 0.5).float()

    def cat(a, ma, b, mb):
        return torch.cat([a, b], 1), torch.cat([ma.expand_as(a), mb.expand_as(b)], 1)

    def block(blk, xx, mm):
        y, m = blk.conv(xx, mm)
        return blk.act(blk.bn(y) if blk.bn is not None else y), m

    with torch.no_grad():
        feats, masks, h, m = [], [], x, known
        for blk in net.enc:
            h, m = block(blk, h, m)
            feats.append(h)
            masks.append(m)
        for i, blk in enumerate(net.dec):
            level = net.depth - 1 - i
            h, m = F.interpolate(h, scale_factor=2), F.interpolate(m, scale_factor=2)
            h, m = block(blk, *cat(h, m, feats[level], masks[level]))
        ref, _ = net.out(*cat(h, m, x, known))
        torch.testing.assert_close(net(x, known), ref, rtol=1e-4, atol=1e-5)
