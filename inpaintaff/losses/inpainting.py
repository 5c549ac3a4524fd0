"""The inpainting loss of Liu et al. (2018): valid L1, hole L1, perceptual, style, total variation.

Normalisations follow the paper: L1 terms divide by the number of image elements (not by the
number of hole/valid pixels); perceptual terms are mean L1 per feature map; style terms compare
Gram matrices K = ΨᵀΨ / (C·H·W) by mean L1; TV is the L1 of neighbour differences of the
composite over the 1-pixel dilation of the hole, divided by the number of image elements.
Terms with weight 0 are not computed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from inpaintaff.losses.features import FeatureExtractor

DEFAULT_WEIGHTS = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix ΨᵀΨ / (C·H·W) per image, computed in float32: (B,C,H,W) -> (B,C,C)."""
    b, c, h, w = feat.shape
    f = feat.float().reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def tv_loss(comp: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Total variation of ``comp`` over pixel pairs both inside the 1-pixel dilation of ``hole``."""
    region = F.max_pool2d(hole.float(), 3, stride=1, padding=1)
    rx = region[..., :, 1:] * region[..., :, :-1]
    ry = region[..., 1:, :] * region[..., :-1, :]
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * rx
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * ry
    return (dx.sum() + dy.sum()) / comp.numel()


class InpaintingLoss(nn.Module):
    """Weighted Liu et al. loss. ``forward(pred, target, known) -> (total, {term: value})``.

    ``known``: (B,1|C,H,W), 1 = known. ``features``: a frozen extractor or None (then the
    perceptual and style terms are skipped). The extractor is kept out of the state dict, so
    checkpoints never carry (or need) its weights.
    """

    def __init__(self, weights: Mapping[str, float] | None = None, features: FeatureExtractor | None = None):
        super().__init__()
        w = dict(DEFAULT_WEIGHTS)
        unknown = set(weights or {}) - set(w)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}; terms are {sorted(w)}")
        w.update({k: float(v) for k, v in (weights or {}).items()})
        self.weights = w
        self._features = [features]  # a list: not a registered submodule

    @property
    def features(self) -> FeatureExtractor | None:
        return self._features[0]

    def forward(self, pred: torch.Tensor, target: torch.Tensor, known: torch.Tensor):
        pred, target = pred.float(), target.float()
        known = known.float().expand_as(pred)
        hole = 1.0 - known
        comp = known * target + hole * pred
        terms: dict[str, torch.Tensor] = {}
        terms["valid"] = (known * (pred - target)).abs().mean()
        terms["hole"] = (hole * (pred - target)).abs().mean()
        need_feats = self.features is not None and (self.weights["perceptual"] or self.weights["style"])
        if need_feats:
            ext = self.features.to(pred.device)
            with torch.no_grad():
                f_gt = ext(target)
            f_out, f_comp = ext(pred), ext(comp)
            if self.weights["perceptual"]:
                terms["perceptual"] = sum(
                    F.l1_loss(a.float(), g.float()) + F.l1_loss(c.float(), g.float())
                    for a, c, g in zip(f_out, f_comp, f_gt)
                )
            if self.weights["style"]:
                terms["style"] = sum(
                    F.l1_loss(gram_matrix(a), gram_matrix(g)) + F.l1_loss(gram_matrix(c), gram_matrix(g))
                    for a, c, g in zip(f_out, f_comp, f_gt)
                )
        if self.weights["tv"]:
            terms["tv"] = tv_loss(comp, hole)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, terms
