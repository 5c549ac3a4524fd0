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
    applied as two matrix products (rows, then columns): the same result as a separable
    zero-padded convolution, and much faster than single-channel conv2d on CPU and GPU.
    """
    return gaussian_blur_multi(x, (sigma,), truncate)[0]


def gaussian_blur_multi(x: torch.Tensor, sigmas: tuple[float, ...], truncate: float = 4.0,
                        full_size: tuple[int, int] | None = None) -> torch.Tensor:
    """``gaussian_blur`` for several sigmas at once: (S, *x.shape).

    ``full_size``: blur ``x`` as a window of an image of that size whose pixels outside the window
    are zero (the kernel as truncated for the full image; its matrices are Toeplitz, so their
    leading blocks serve a window anywhere). Two large matrix products, not many small ones: the
    row pass for all sigmas and images at once, then the column pass per sigma.
    """
    *lead, h, w = x.shape
    fh, fw = full_size or (h, w)
    dev, n_s = str(x.device), len(sigmas)
    gh = torch.cat([_blur_matrix(float(s), fh, truncate, dev)[:h, :h] for s in sigmas]).to(x.dtype)  # (S·h, h)
    gw = torch.stack([_blur_matrix(float(s), fw, truncate, dev)[:w, :w] for s in sigmas]).to(x.dtype)  # (S, w, w)
    b = x.numel() // (h * w)
    rows = gh @ x.reshape(b, h, w).permute(1, 0, 2).reshape(h, b * w)  # (S·h, b·w)
    both = torch.bmm(rows.view(n_s, h * b, w), gw.transpose(1, 2))  # (S, h·b, w)
    return both.view(n_s, h, b, w).permute(0, 2, 1, 3).reshape(n_s, *lead, h, w)


def is_identity_blur(sigma: float, eps: float = 1e-12) -> bool:
    """Whether a Gaussian of ``sigma`` leaves images unchanged in float32 (neighbour weight < eps)."""
    return math.exp(-0.5 / float(sigma) ** 2) < eps


def smooth_on_band(e: torch.Tensor, band: torch.Tensor, sigmas: tuple[float, ...], block: int = 16) -> torch.Tensor:
    """e + Σ_σ (G_σ * (e·N)) / (G_σ * N) on the band N, 0 elsewhere (docs/method.md §3).

    ``e`` (K, 1, H, W) float, ``band`` (K, 1, H, W) bool. A normalised convolution over N, so the
    zeros outside N do not pull the smoothed error down. Linear in ``e`` for a fixed band. A σ so
    small that its kernel is the identity in float32 (the default 0.1) adds e itself, unblurred.
    Both the input (e·N) and the output live on N, so each region is blurred only inside the
    bounding box of its band (rounded up to ``block`` pixels; regions with boxes of one size
    are blurred together): the same sums without the zeros.
    """
    nf = band.to(e.dtype)
    e = e * nf
    wide = tuple(s for s in sigmas if not is_identity_blur(s))
    out = e * (1 + len(sigmas) - len(wide))
    if not wide:
        return out
    k, _, h, w = e.shape
    boxes = [_box(band[:, 0].any(2), block), _box(band[:, 0].any(1), block)]  # rows, columns
    sizes = boxes[0][1] * (w + 1) + boxes[1][1]
    for size in torch.unique(sizes[boxes[0][1] > 0]).tolist():
        idx = (sizes == size).nonzero().squeeze(1)
        bh, bw = divmod(int(size), w + 1)
        rows = boxes[0][0][idx, None] + torch.arange(bh, device=e.device)  # (n, bh)
        cols = boxes[1][0][idx, None] + torch.arange(bw, device=e.device)  # (n, bw)
        at = (idx[:, None, None], 0, rows[:, :, None], cols[:, None, :])
        blurred = gaussian_blur_multi(torch.cat([e[at], nf[at]]), wide, full_size=(h, w))  # (S, 2n, bh, bw)
        num, den = blurred[:, : len(idx)], blurred[:, len(idx) :]
        out[at] += torch.where(den > 1e-12, num / den.clamp_min(1e-12), 0.0).sum(0)
    return out * nf


def _box(hit: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``hit`` (K, n) bool: a window (start, length) covering its True entries, the
    length rounded up to ``block`` (at most n) and the start moved so the window fits; length 0
    where nothing is hit."""
    n = hit.shape[1]
    pos = torch.arange(n, device=hit.device)
    first = torch.where(hit, pos, n).amin(1)
    last = torch.where(hit, pos, -1).amax(1)
    length = ((last - first + block) // block * block).clamp(max=n)
    length = torch.where(last >= 0, length, 0)
    start = torch.minimum(first, n - length).clamp_min(0)
    return start, length


@lru_cache(maxsize=64)
def _disk_rows(radius: int) -> tuple[tuple[int, int], ...]:
    """The disk {dy² + dx² <= r²} as (half-width a, largest |dy| whose row reaches a) pairs.

    Row dy of the disk spans |dx| <= a(dy) = floor(sqrt(r² - dy²)), which shrinks as |dy| grows, so
    the disk is the union over distinct widths a of the rectangles |dx| <= a, |dy| <= b(a).
    """
    widths = [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]
    return tuple((a, max(dy for dy, w in enumerate(widths) if w >= a)) for a in sorted(set(widths)))


def _dilate_1d(mask: torch.Tensor, a: int, dim: int) -> torch.Tensor:
    """OR of ``mask`` (bool) over the window [-a, a] along ``dim``, zero outside.

    Windows of length 2^k are built by doubling; the window of length 2a + 1 is the OR of two
    overlapping ones: about 2·log2(a) boolean operations instead of 2a.
    """
    if a == 0:
        return mask
    n = mask.shape[dim]
    pad = [0, 0] * (mask.ndim - 1 - dim % mask.ndim) + [a, a]
    win = F.pad(mask, pad)  # bool, zero padded: index i of win is i - a of mask
    length, span = 1, 2 * a + 1
    while 2 * length <= span:
        win = win.narrow(dim, 0, win.shape[dim] - length) | win.narrow(dim, length, win.shape[dim] - length)
        length *= 2
    # win[i] = OR of padded[i : i + length]; window of x: padded[x : x + span]
    return win.narrow(dim, 0, n) | win.narrow(dim, span - length, n)


def dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``mask`` (B, 1, H, W) bool by the disk {|v| <= radius}.

    Exact, as the union of the disk's rectangles |dx| <= a, |dy| <= b(a), each dilated separably
    with a handful of boolean operations: far cheaper than a (2r+1)² convolution.
    """
    if radius <= 0:
        return mask
    mask = mask.bool()
    out = None
    for a, b in _disk_rows(int(radius)):
        rect = _dilate_1d(_dilate_1d(mask, a, -1), b, -2)
        out = rect if out is None else out | rect
    return out


def hidden_band(a: torch.Tensor, b: torch.Tensor, radius: int, within: torch.Tensor) -> torch.Tensor:
    """The band N around the boundary of ``a`` and ``b`` (docs/method.md §3): the pixels of ``within``
    whose disk of ``radius`` meets both ``a`` and ``b``; all (K, 1, H, W) bool.

    The engine hides it from both conditionals; the IGM training masks (``data.masks``) hide it too.
    """
    reach = dilate_disk(torch.cat([a, b]), radius)  # both sides in one call
    return within & reach[: len(a)] & reach[len(a) :]
