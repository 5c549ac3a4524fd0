"""Predict-side LightningModule: runs the IGM split engine on batches of patches.

``predict_step`` returns, per batch, the patches' positions, their 0/1 affinities (bool, on CPU)
and leaf ids, and the engine's counters; ``inpaintaff.tasks.inpaintaff.writer.AffinityWriter`` accumulates
them per frame.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from inpaintaff.igm.affinities import patch_affinities
from inpaintaff.igm.split import EngineConfig, SplitEngine
from inpaintaff.offsets import OFFSETS


class InpaintAffModule(pl.LightningModule):
    """Wraps an inpainter (a module, so Lightning moves it to the device) and the engine settings."""

    def __init__(
        self,
        inpainter: nn.Module,
        engine: EngineConfig | Mapping | None = None,
        offsets: Sequence[Sequence[int]] | None = None,
    ):
        super().__init__()
        self.inpainter = inpainter
        cfg = engine if isinstance(engine, EngineConfig) else EngineConfig(**dict(engine or {}))
        self.engine = SplitEngine(self.inpainter, cfg)
        self.offsets = [list(map(int, o)) for o in (OFFSETS if offsets is None else offsets)]

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> dict:
        start = time.perf_counter()
        res = self.engine.run(batch["image"], batch["seed"].tolist(), foreground=batch.get("foreground"))
        aff, valid = patch_affinities(res.leaf_ids, self.offsets)
        if batch["image"].is_cuda:
            torch.cuda.synchronize()
        return {
            "frame": batch["frame"].cpu(), "patch_id": batch["patch_id"].cpu(),
            "y": batch["y"].cpu(), "x": batch["x"].cpu(),
            "aff": aff.cpu(), "valid": valid.cpu(), "leaf_ids": res.leaf_ids.cpu(),
            "image": batch["image"][:, 0].float().cpu(),
            "stats": {k: v.cpu() for k, v in res.stats.items()},
            "forward_passes": res.forward_passes, "conditionals": res.conditionals,
            "seconds": time.perf_counter() - start,
        }
