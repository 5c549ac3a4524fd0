"""FGNET and AFFNET: the pix2pix generator, the Dice loss and training on labeled crops."""

from __future__ import annotations

import pytest
import torch

from inpaintaff.losses.dice import dice_loss
from inpaintaff.modules.affnet import AffNetModule
from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.nets.pix2pix import Pix2PixUNet
from inpaintaff.train import train


def test_pix2pix_any_size_and_depth():
    net = Pix2PixUNet(1, 3, depth=3, base_features=4, max_features=8).eval()
    assert net(torch.rand(2, 1, 37, 50)).shape == (2, 3, 37, 50)
    full = Pix2PixUNet(1, 12, depth=6, base_features=64)
    n_params = sum(p.numel() for p in full.parameters())
    assert 20e6 < n_params < 60e6  # the paper's FGNET/AFFNET size


def test_dice_loss_cases():
    t = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert float(dice_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(1 - t, t)) == pytest.approx(1.0, abs=1e-6)
    half = torch.full_like(t, 0.5)
    # 2*Σ(0.5*t) / (Σ0.25 + Σt²) = 2*1 / (1 + 2)
    assert float(dice_loss(half, t)) == pytest.approx(1 - 2 / 3, abs=1e-6)
    valid = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert float(dice_loss(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]), t, valid)) == pytest.approx(0.0, abs=1e-6)


def _labeled_batch() -> dict:
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 32, 32, dtype=torch.int64)
    labels[:, 4:14, 4:14] = 1
    labels[:, 14:28, 6:20] = 2
    labels[:, 18:30, 20:31] = 3
    labels[0, :, -4:] = -1  # padded pixels are ignored
    image = (labels > 0).float()[:, None] * 0.8 + 0.05 * torch.randn(4, 1, 32, 32, generator=g)
    return {"image": image, "labels": labels}


@pytest.mark.parametrize("cls", [FGNetModule, AffNetModule])
def test_few_steps_lower_the_loss(cls):
    torch.manual_seed(0)
    module = cls(depth=3, base_features=8, max_features=16, dropout=0.0, lr=1e-2)
    batch = _labeled_batch()
    opt = module.configure_optimizers()
    first = None
    for _ in range(15):
        loss = module.loss(module(batch["image"]), batch["labels"])
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        last = float(module.loss(module(batch["image"]), batch["labels"]))
    assert last < 0.7 * first
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", ["fgnet", "affnet"])
def test_train_entry_fast_dev_run(compose, model):
    cfg = compose("train", [
        f"model={model}", "model.depth=3", "model.base_features=8", "model.max_features=16",
        "data.train_mode=labeled", "data.max_instances=20", "data.crop_size=64", "data.batch_size=2",
        "trainer.fast_dev_run=true", "trainer.accelerator=cpu",
    ])
    out = train(cfg)
    assert out["metrics"]["train/loss_step"] >= 0


@pytest.mark.parametrize("model", ["fgnet_cpu", "affnet_cpu"])
def test_supervised_model_on_raw_crops_says_to_set_labeled(compose, model):
    cfg = compose("train", [f"model={model}", "trainer.fast_dev_run=true", "trainer.accelerator=cpu"])
    assert cfg.data.train_mode == "raw"
    with pytest.raises(ValueError, match=r"trains on labeled crops: set data\.train_mode=labeled"):
        train(cfg)
