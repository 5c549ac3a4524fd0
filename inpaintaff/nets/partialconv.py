"""Partial convolution (Liu et al. 2018), following NVIDIA's reference implementation.

out = (W·(X⊙M))·(k/sum(M)) + b where sum(M) > 0, else 0 (bias included); new mask = 1 where
sum(M) > 0. ``k`` counts the mask elements under the kernel: C·kh·kw. A single-channel mask is
broadcast over the C input channels (then sum(M) counts every channel, k/sum(M) = kh·kw/sum(m)).
Mask sums and the ratio are computed in float32 with autocast off, so float16/bfloat16 autocast
cannot overflow or round the counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """A Conv2d that sees only known pixels and renormalises by the known fraction.

    ``forward(x, mask)`` takes ``mask`` of shape (B,1,H,W) (broadcast over channels) or
    (B,C_in,H,W) (multi-channel, e.g. concatenated skip masks), 1 = known, and returns
    ``(out, new_mask)`` with ``new_mask`` of shape (B,1,H',W') (the same for every output channel).
    With ``mask=None`` (all known) it is exactly ``nn.Conv2d``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("PartialConv2d supports groups=1 only")
        if self.padding_mode != "zeros":
            raise ValueError("PartialConv2d supports padding_mode='zeros' only (the mask is zero-padded)")
        kh, kw = self.kernel_size
        self.register_buffer("mask_kernel", torch.ones(1, 1, kh, kw), persistent=False)

    def mask_update(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From ``counts`` (B,1,H,W), the number of known input channels per pixel, return
        (ratio k/sum(M) zeroed where sum(M)=0, new mask), both float32 (B,1,H',W')."""
        kh, kw = self.kernel_size
        with torch.autocast(device_type=counts.device.type, enabled=False):
            msum = F.conv2d(counts.float(), self.mask_kernel.float(), None, self.stride, self.padding, self.dilation)
            new_mask = torch.clamp(msum, 0.0, 1.0)
            ratio = float(self.in_channels * kh * kw) / (msum + 1e-8) * new_mask
        return ratio, new_mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if mask is None:
            out = super().forward(x)
            b, _, h, w = out.shape
            return out, torch.ones(b, 1, h, w, device=out.device, dtype=torch.float32)
        if mask.dim() != 4 or mask.shape[1] not in (1, self.in_channels):
            raise ValueError(
                f"mask must be (B,1,H,W) or (B,{self.in_channels},H,W), got {tuple(mask.shape)}"
            )
        counts = mask.float() * self.in_channels if mask.shape[1] == 1 else mask.float().sum(1, keepdim=True)
        return self.forward_counts(x * mask.to(x.dtype), counts)

    def forward_counts(self, x_masked: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like ``forward`` for input already multiplied by its mask, with the mask given as
        ``counts`` (B,1,H,W): the number of known channels at each pixel. Saves building a
        C-channel mask when masks are constant over groups of channels (U-Net skip concatenation)."""
        ratio, new_mask = self.mask_update(counts)
        raw = F.conv2d(x_masked, self.weight, None, self.stride, self.padding, self.dilation)
        out = raw.float() * ratio
        if self.bias is not None:
            out = out + self.bias.float().view(1, -1, 1, 1)
            out = out * new_mask
        return out.to(raw.dtype), new_mask
