"""The partial-convolution U-Net of Liu et al. (2018), with configurable widths and depth.

Level 0 works at full resolution, each further level halves it (depth = len(widths) - 1).
Decoder: nearest up-sampling, concatenation with the skip features AND their masks, a partial
conv, BatchNorm, LeakyReLU(0.2). The last layer also sees the (masked) input image and its mask
and outputs the full predicted image. Inputs whose size is not a multiple of 2**depth are padded
internally with mask 0, so any size works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintaff.nets.partialconv import PartialConv2d

DEFAULT_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)


class PConvBlock(nn.Module):
    """Partial conv, optional BatchNorm, activation; passes the mask along."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: bool, act: str | None):
        super().__init__()
        self.conv = PartialConv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = {"relu": nn.ReLU(), "leaky": nn.LeakyReLU(0.2), None: None}[act]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._post(*self.conv(x, mask))

    def forward_counts(self, x_masked: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._post(*self.conv.forward_counts(x_masked, counts))

    def _post(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, mask


class PConvUNet(nn.Module):
    """Partial-conv U-Net: ``forward(image (B,C,H,W), known (B,1|C,H,W)) -> prediction (B,C,H,W)``.

    widths: features per level (paper: 64, 128, 256, 512, 512); kernel_sizes: encoder kernel per
    level (default 7, 5, 5, 3, ...; the decoder uses 3x3). ``batch_norm`` follows Liu et al.: none
    on the first encoder layer and the output layer. Known pixels = 1 in ``known``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 512),
        kernel_sizes: Sequence[int] | None = None,
        batch_norm: bool = True,
    ):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2:
            raise ValueError(f"widths needs at least two levels, got {widths}")
        kernels = [int(k) for k in (kernel_sizes or DEFAULT_KERNELS[: len(widths)])]
        if len(kernels) != len(widths) or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernel_sizes must be {len(widths)} odd sizes, got {kernels}")
        self.in_channels = in_channels
        self.depth = len(widths) - 1
        self.enc = nn.ModuleList()
        cin = in_channels
        for level, (w, k) in enumerate(zip(widths, kernels)):
            self.enc.append(PConvBlock(cin, w, k, stride=1 if level == 0 else 2, bn=batch_norm and level > 0,
                                       act="relu"))
            cin = w
        self.dec = nn.ModuleList()
        for level in reversed(range(self.depth)):
            self.dec.append(PConvBlock(widths[level + 1] + widths[level], widths[level], 3, 1, batch_norm, "leaky"))
        # dec[i] produces level depth-1-i; the output layer sees level 0 features and the input.
        self.out = PartialConv2d(widths[0] + in_channels, in_channels, 3, padding=1, bias=True)

    @property
    def multiple(self) -> int:
        """Input sizes are padded to a multiple of this."""
        return 2**self.depth

    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"image must be (B,{self.in_channels},H,W), got {tuple(image.shape)}")
        if known.dim() != 4 or known.shape[1] not in (1, self.in_channels) or known.shape[2:] != image.shape[2:]:
            raise ValueError(f"known must be (B,1|C,H,W) matching image {tuple(image.shape)}, got {tuple(known.shape)}")
        h, w = image.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        mask = known.to(image.dtype)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph))
            mask = F.pad(mask, (0, pw, 0, ph))  # padded pixels are unknown
        x0 = image * mask  # hidden values never enter, not even through the last layer's skip
        feats, masks = [], []
        x, m = x0, mask
        for block in self.enc:
            x, m = block(x, m)
            feats.append(x)
            masks.append(m)
        x, m = feats[-1], masks[-1]
        for i, block in enumerate(self.dec):
            level = self.depth - 1 - i
            # mask before up-sampling (4x fewer multiplications): up(x)·up(m) = up(x·m)
            x, m = _up2(x * m.to(x.dtype)), _up2(m)
            x, m = block.forward_counts(*_concat(x, m, feats[level] * masks[level].to(x.dtype), masks[level]))
        x, _ = self.out.forward_counts(*_concat(x * m.to(x.dtype), m, x0, mask))
        return x[..., :h, :w]


def _up2(x: torch.Tensor) -> torch.Tensor:
    """Nearest up-sampling by 2 (as ``F.interpolate(scale_factor=2)``, one copy, in ``x``'s memory format)."""
    b, c, h, w = x.shape
    channels_last = c > 1 and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    up = x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)
    return up.contiguous(memory_format=fmt)


def _concat(a: torch.Tensor, ma: torch.Tensor, b: torch.Tensor, mb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate masked features; their (B,1,H,W) masks become per-pixel known-channel counts."""
    return torch.cat([a, b.to(a.dtype)], dim=1), _counts(ma, a.shape[1]) + _counts(mb, b.shape[1])


def _counts(mask: torch.Tensor, channels: int) -> torch.Tensor:
    """Known channels per pixel of a (B,1,H,W) mask broadcast over ``channels``, or of a per-channel mask."""
    return mask.float() * channels if mask.shape[1] == 1 else mask.float().sum(1, keepdim=True)
