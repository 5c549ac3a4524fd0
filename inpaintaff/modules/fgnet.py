"""FGNET: a pix2pix U-Net predicting the foreground, trained with binary cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintaff.losses.dice import dice_loss
from inpaintaff.modules.supervised import IGNORE, SupervisedPix2PixModule
from inpaintaff.offsets import shifted_slices
from inpaintaff.segment.foreground import GAP_PAIRS

BOUNDARY_REACH = 2  # px on either side of a foreground edge that boundary_weight weighs


def _shift(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[..., y, x] = t[..., y + dy, x + dx]``, 0 outside (as TRUEFG's NumPy twin)."""
    out = torch.zeros_like(t)
    src, dst = shifted_slices(tuple(t.shape[-2:]), (dy, dx))
    out[(..., *src)] = t[(..., *dst)]
    return out


def foreground_target(labels: torch.Tensor) -> torch.Tensor:
    """TRUEFG (``segment.foreground.true_foreground``) of label batches (B, H, W): the segments,
    with one-pixel gaps between two segments closed, as float (B, 1, H, W); ignored (negative)
    pixels count as background here."""
    lab = labels.clamp_min(0)
    fg = lab > 0
    for dy, dx in GAP_PAIRS:
        a, b = _shift(lab, dy, dx), _shift(lab, -dy, -dx)
        fg = fg | ((a > 0) & (b > 0) & (a != b))
    return fg.float()[:, None]


def near_edges(target: torch.Tensor, reach: int = BOUNDARY_REACH) -> torch.Tensor:
    """Pixels within ``reach`` px of a change between foreground and background (B, 1, H, W)."""
    k = 2 * reach + 1
    grown = F.max_pool2d(target, k, stride=1, padding=reach)
    shrunk = -F.max_pool2d(-target, k, stride=1, padding=reach)
    return (grown != shrunk).float()


class FGNetModule(SupervisedPix2PixModule):
    """Foreground probability from a normalised image (one output channel).

    ``boundary_weight``: pixels near the edge of the foreground (and in the gaps between nuclei)
    count ``1 + boundary_weight`` times in the loss, where a too tight or too loose foreground errs.
    ``dice_weight``: adds this times the soft Dice loss of the batch's foreground, which scores the
    overlap as the IoU does (a ring of missed pixels costs as much as it does in the IoU).
    """

    out_channels = 1

    def __init__(self, *args, boundary_weight: float = 0.0, dice_weight: float = 0.0, **kwargs):
        if boundary_weight < 0:
            raise ValueError(f"model.boundary_weight must be >= 0, got {boundary_weight}")
        if dice_weight < 0:
            raise ValueError(f"model.dice_weight must be >= 0, got {dice_weight}")
        super().__init__(*args, **kwargs)
        self.save_hyperparameters(ignore=["init_from"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = (labels != IGNORE).float()[:, None]
        target = foreground_target(labels)
        weight = valid
        if self.hparams.get("boundary_weight", 0.0):
            weight = valid * (1.0 + self.hparams.boundary_weight * near_edges(target))
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = (bce * weight).sum() / weight.sum().clamp_min(1)
        if self.hparams.get("dice_weight", 0.0):
            soft_dice = dice_loss(torch.sigmoid(logits), target, valid, eps=1.0, squared=False)
            loss = loss + self.hparams.dice_weight * soft_dice
        return loss
