"""Inpainters the split engine consults: an analytic one and a trained inpainting network.

An inpainter maps ``image`` (B, 1, H, W) and ``known`` (B, 1, H, W, float, 1 = known) to a
prediction (B, 1, H, W) of every pixel; the engine only reads it on the hidden band.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from inpaintaff.igm.filters import gaussian_blur


@runtime_checkable
class Inpainter(Protocol):
    """Predicts hidden pixels from the known ones."""

    def __call__(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor: ...


class GaussianInpainter(nn.Module):
    """Normalised Gaussian averaging: conv(image * known) / conv(known).

    Pixels with no known pixel within reach of the kernel get the mean of the known pixels of
    their image (a constant prior), or 0 if nothing is known. ``sigma``: 4 px by default, as
    ``task.inpaintaff.gaussian_sigma`` (the ANALYTIC-AFF rows).
    """

    def __init__(self, sigma: float = 4.0, eps: float = 1e-8):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"GaussianInpainter sigma must be > 0, got {sigma}")
        self.sigma, self.eps = float(sigma), float(eps)

    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        image, known = image.float(), known.float()
        num = gaussian_blur(image * known, self.sigma)
        den = gaussian_blur(known, self.sigma)
        n_known = known.sum(dim=(-1, -2), keepdim=True)
        prior = (image * known).sum(dim=(-1, -2), keepdim=True) / n_known.clamp_min(1.0)
        return torch.where(den > self.eps, num / den.clamp_min(self.eps), prior.expand_as(num))


# load_net_inpainter's ``compile``: off, dynamic shapes (True is "dynamic"), one fixed shape.
COMPILE_MODES = (False, True, "dynamic", "fixed")


class NetInpainter(nn.Module):
    """A trained ``InpaintingModule`` (whose ``forward(image, known)`` inpaints) behind the inpainter interface
    (load one with ``inpaintaff.modules.net_inpainter.load_net_inpainter``)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.net = module
        self.net.eval()

    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        out = self.net(image, known)
        if out.shape != image.shape:
            raise RuntimeError(f"inpainting net returned shape {tuple(out.shape)} for input {tuple(image.shape)}")
        return out
