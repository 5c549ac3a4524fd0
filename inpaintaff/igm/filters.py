"""Small torch filters shared by the engine and the analytic inpainter (separable Gaussian, disk dilation)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=64)
def _gaussian_1d(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


@lru_cache(maxsize=128)
def _blur_matrix(sigma: float, n: int, truncate: float, device: str) -> torch.Tensor:
    """(n, n) matrix applying the truncated 1D Gaussian with zero padding along one axis."""
    radius = max(1, min(math.ceil(truncate * sigma), n - 1))
    k = _gaussian_1d(sigma, radius)
    idx = torch.arange(n)
    diff = idx[None, :] - idx[:, None]  # column j contributes to row i with weight k[j - i]
    inside = diff.abs() <= radius
    m = torch.where(inside, k[(diff + radius).clamp(0, 2 * radius)], torch.zeros(()))
    return m.to(device)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Blur each channel of ``x`` (B, C, H, W) with a normalised Gaussian, zero padding outside.

    The kernel is truncated at ``ceil(truncate * sigma)`` pixels (and at the image size). It is
    applied as two small matrix products (rows, then columns): the same result as a separable
    zero-padded convolution, and much faster than single-channel conv2d on CPU and GPU.
    """
    h, w = x.shape[-2:]
    dev = str(x.device)
    gh = _blur_matrix(float(sigma), h, truncate, dev).to(x.dtype)
    gw = _blur_matrix(float(sigma), w, truncate, dev).to(x.dtype)
    return gh @ x @ gw.T


def gaussian_blur_multi(x: torch.Tensor, sigmas: tuple[float, ...], truncate: float = 4.0) -> torch.Tensor:
    """``gaussian_blur`` for several sigmas in one batched product: (S, *x.shape)."""
    h, w = x.shape[-2:]
    dev = str(x.device)
    gh = torch.stack([_blur_matrix(float(s), h, truncate, dev) for s in sigmas]).to(x.dtype)
    gw = torch.stack([_blur_matrix(float(s), w, truncate, dev) for s in sigmas]).to(x.dtype)
    extra = (1,) * (x.ndim - 2)
    gh = gh.view(len(sigmas), *extra, h, h)
    gw = gw.view(len(sigmas), *extra, w, w)
    return gh @ x.unsqueeze(0) @ gw.transpose(-1, -2)


@lru_cache(maxsize=64)
def _disk(radius: int) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).float()


def dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``mask`` (B, 1, H, W) bool by the disk {|v| <= radius}."""
    if radius <= 0:
        return mask
    k = _disk(int(radius)).to(mask.device)[None, None]
    hit = F.conv2d(mask.float(), k, padding=int(radius))
    return hit > 0.5
