"""The pix2pix U-Net generator (Isola et al. 2017), used by FGNET and AFFNET."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Pix2PixUNet(nn.Module):
    """U-Net with ``depth`` stride-2 down-samplings; features double from ``base_features`` up to
    ``max_features``. Inputs of any size are reflect-padded to a multiple of 2**depth and the
    output is cropped back. Returns raw logits with ``out_channels`` channels.

    pix2pix sees the input at full resolution only in its first (stride-2) layer. ``refine`` > 0
    adds a residual block of that many features on the logits and the input at full resolution
    (not in the paper), where one-pixel boundaries are drawn; it starts as the identity.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        depth: int = 6,
        base_features: int = 64,
        max_features: int = 512,
        dropout: float = 0.5,
        refine: int = 0,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        widths = [min(base_features * 2**i, max_features) for i in range(depth)]
        self.down = nn.ModuleList(
            _down(in_channels if i == 0 else widths[i - 1], widths[i], norm=0 < i < depth - 1) for i in range(depth)
        )
        ups = []
        for i in reversed(range(1, depth)):
            cin = widths[i] if i == depth - 1 else 2 * widths[i]
            # Dropout in the three innermost decoder blocks, as in pix2pix.
            ups.append(_up(cin, widths[i - 1], dropout if i >= depth - 3 else 0.0))
        self.up = nn.ModuleList(ups)
        self.head = nn.ConvTranspose2d(2 * widths[0] if depth > 1 else widths[0], out_channels, 4, 2, 1)
        self.refine = None
        if refine:
            last = nn.Conv2d(refine, out_channels, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.refine = nn.Sequential(nn.Conv2d(out_channels + in_channels, refine, 3, padding=1),
                                        nn.ReLU(inplace=True), nn.Conv2d(refine, refine, 3, padding=1),
                                        nn.ReLU(inplace=True), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        image = x
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        out = self.head(x)
        if self.refine is not None:
            out = out + self.refine(torch.cat([out, image], dim=1))
        return out[..., :h, :w]
