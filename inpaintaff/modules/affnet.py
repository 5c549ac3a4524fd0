"""AFFNET: the supervised affinity baseline; a pix2pix U-Net with one channel per offset, Dice loss."""

from __future__ import annotations

import torch

from inpaintaff.losses.dice import dice_loss
from inpaintaff.modules.supervised import IGNORE, SupervisedPix2PixModule
from inpaintaff.offsets import OFFSETS, affinities_from_labels_torch


class AffNetModule(SupervisedPix2PixModule):
    """Affinities for the 12 offsets of docs/method.md §4 (1 = same object) from a normalised image."""

    out_channels = len(OFFSETS)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target, valid = affinities_from_labels_torch(labels, OFFSETS, ignore_label=IGNORE)
        return dice_loss(torch.sigmoid(logits), target, valid)
