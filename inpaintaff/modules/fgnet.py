"""FGNET: a pix2pix U-Net predicting the foreground, trained with binary cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintaff.modules.supervised import IGNORE, SupervisedPix2PixModule


class FGNetModule(SupervisedPix2PixModule):
    """Foreground probability from a normalised image (one output channel)."""

    out_channels = 1

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = (labels != IGNORE).float()[:, None]
        target = (labels > 0).float()[:, None]
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (bce * valid).sum() / valid.sum().clamp_min(1)
