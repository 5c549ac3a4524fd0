"""Slimmed checkpoints load like the originals and carry no optimizer state."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from inpaintaff.modules.export import slim_checkpoint
from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.modules.net_inpainter import load_net_inpainter
from inpaintaff.utils.errors import InputError


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


@pytest.mark.parametrize("name, widths", [("hela_inpaint_cpu", [32, 64, 128, 128]),
                                          ("hela_inpaint_cpu_small", [16, 32, 64, 64])])
def test_committed_inpainting_nets_fill_holes_in_a_real_frame(name, widths, shared_root):
    """Both shipped inpainting nets load, have the widths their recipes give, and fill disc-shaped
    holes in a held-out HeLa frame (t054) closer to the truth than the known pixels' mean does."""
    from pathlib import Path

    import numpy as np

    from inpaintaff.data.normalize import percentile_normalize
    from inpaintaff.io.ctc import raw_path, read_image

    path = Path(__file__).resolve().parents[1] / "checkpoints" / f"{name}.ckpt"
    assert torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]["widths"] == widths
    image = percentile_normalize(read_image(raw_path(shared_root, "Fluo-N2DL-HeLa", "01", 54)).astype(np.float32))
    patches = torch.from_numpy(np.stack([image[y : y + 64, x : x + 64] for y, x in
                                         [(200, 300), (300, 500), (400, 700), (500, 200)]]))[:, None]
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    hole = ((yy - 32) ** 2 + (xx - 32) ** 2 <= 12**2).float()[None, None].expand_as(patches)
    known = 1 - hole
    with torch.no_grad():
        filled = load_net_inpainter(path)(patches, known)
    net_err = ((filled - patches).abs() * hole).sum() / hole.sum()
    mean_fill = (patches * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    mean_err = ((mean_fill - patches).abs() * hole).sum() / hole.sum()
    assert net_err < 0.8 * mean_err, (name, float(net_err), float(mean_err))
