"""Slimmed checkpoints load like the originals and carry no optimizer state."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.export import slim_checkpoint


def test_slim_checkpoint_roundtrip(tmp_path):
    module = FGNetModule(depth=2, base_features=4, max_features=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "full.ckpt")
    slim_checkpoint(tmp_path / "full.ckpt", tmp_path / "slim.ckpt")
    raw = torch.load(tmp_path / "slim.ckpt", weights_only=True)
    assert "optimizer_states" not in raw and "state_dict" in raw
    loaded = FGNetModule.load_from_checkpoint(tmp_path / "slim.ckpt", map_location="cpu")
    for a, b in zip(module.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match="checkpoint not found"):
        slim_checkpoint(tmp_path / "nope.ckpt", tmp_path / "x.ckpt")


def test_committed_fgnet_checkpoint_loads():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "checkpoints" / "hela_fgnet_cpu.ckpt"
    module = FGNetModule.load_from_checkpoint(path, map_location="cpu").eval()
    with torch.no_grad():
        prob = module.predict_proba(torch.rand(1, 1, 64, 64))
    assert prob.shape == (1, 1, 64, 64) and 0 <= float(prob.min()) and float(prob.max()) <= 1
