"""Sørensen–Dice loss over channels, with an optional validity mask."""

from __future__ import annotations

import torch


def dice_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-6,
              squared: bool = True):
    """1 − mean over channels of 2·Σ(p·t) / (Σp² + Σt²); sums over batch and space.

    ``pred`` holds probabilities (B, C, H, W); ``valid`` (same shape or broadcastable) masks
    pixels that must not count. ``squared=False``: the denominator Σp + Σt (the soft Dice, as the
    overlap of a foreground is scored).
    """
    if valid is not None:
        valid = valid.to(pred.dtype)
        pred, target = pred * valid, target * valid
    dims = (0, 2, 3)
    num = 2 * (pred * target).sum(dims)
    den = (pred * pred).sum(dims) + (target * target).sum(dims) if squared else pred.sum(dims) + target.sum(dims)
    return 1 - ((num + eps) / (den + eps)).mean()
