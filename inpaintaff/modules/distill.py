"""DISTILL: an affinity U-Net (AFFNET's architecture and 12 offsets) trained on the engine's own
affinities for unlabeled frames, so that whole frames need one forward pass instead of the split
engine. No human label is read anywhere in its training."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintaff.losses.dice import dice_loss
from inpaintaff.modules.affnet import AffNetModule

LOSSES = ("bce", "dice", "bce_dice")


def masked_soft_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy against soft targets in [0, 1], averaged over the valid pairs only."""
    weight = valid.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * weight).sum() / weight.sum().clamp_min(1.0)


class DistillModule(AffNetModule):
    """Trained on batches of ``image``, ``target`` (engine affinities) and ``valid`` (pairs the
    engine saw); ``loss``: masked BCE on soft targets, masked Dice, or their sum."""

    needs_labels = False
    train_mode = "affinities"  # what the data module must yield (checked by inpaintaff.train)

    def __init__(self, *args, loss: str = "bce_dice", **kwargs):
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {LOSSES}, got {loss!r}")
        super().__init__(*args, **kwargs)
        self.save_hyperparameters(ignore=["init_from"])

    def distill_loss(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        kind = self.hparams.loss
        out = logits.new_zeros(())
        if kind in ("bce", "bce_dice"):
            out = out + masked_soft_bce(logits, target, valid)
        if kind in ("dice", "bce_dice"):
            out = out + dice_loss(torch.sigmoid(logits), target, valid)
        return out

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.distill_loss(logits, batch["target"], batch["valid"])
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True,
                 batch_size=batch["image"].shape[0])
        return loss
