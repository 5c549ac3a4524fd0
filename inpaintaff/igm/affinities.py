"""Affinities from patch leaves (docs/method.md §4) and their accumulation over sliding patches
(the files they are written to: ``inpaintaff.io.affinities``).

Channel c relates pixel (y, x) to (y + dy_c, x + dx_c); 1 = same object (same leaf).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from inpaintaff.offsets import OFFSETS, label_affinities, shifted_slices

PATCH_WEIGHTINGS = ("uniform", "tent")


def patch_affinities(
    leaf_ids: torch.Tensor, offsets: Sequence[Sequence[int]] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Affinities of leaf labellings (P, h, w): (aff bool (P, C, h, w), valid bool (C, h, w)).

    aff[p, c, y, x] = leaf (y, x) == leaf (y + dy, x + dx); pairs leaving the patch are invalid.
    """
    aff, _ = label_affinities(leaf_ids, offsets)
    _, valid = label_affinities(leaf_ids.new_zeros(leaf_ids.shape[1:]), offsets)
    return aff, valid


def patch_weights(size: int, weighting: str = "uniform",
                  offsets: Sequence[Sequence[int]] | None = None) -> np.ndarray | None:
    """Each pair's vote within a ``size``² patch, int32 (C, size, size); None for ``uniform``.

    ``tent``: a pixel weighs its distance to the patch's nearest edge plus one (1 at the edge,
    size / 2 in the centre), a pair the smaller weight of its two pixels: near a patch's edge the
    inpainter sees context on one side only. Whole numbers keep the weighted sums exact.
    """
    if weighting not in PATCH_WEIGHTINGS:
        raise ValueError(f"patch weighting must be one of {PATCH_WEIGHTINGS}, got {weighting!r}")
    if weighting == "uniform":
        return None
    offsets = OFFSETS if offsets is None else offsets
    r = np.arange(size)
    ramp = np.minimum(r + 1, size - r)
    pixel = np.minimum(ramp[:, None], ramp[None, :]).astype(np.int32)
    out = np.zeros((len(offsets), size, size), dtype=np.int32)
    for c, off in enumerate(offsets):
        src, dst = shifted_slices((size, size), tuple(off))
        out[c][src] = np.minimum(pixel[src], pixel[dst])
    return out


class AffinityAccumulator:
    """Sums and (weighted) counts of patch affinities over one frame (CPU, numpy).

    Sums of 0/1 values times whole-number weights are whole numbers, exact in float32 up to 2**24,
    so the result does not depend on the order in which patches arrive (or on which rank saw them).
    """

    def __init__(self, shape: tuple[int, int], n_channels: int = len(OFFSETS)):
        self.shape = tuple(int(s) for s in shape)
        self.sums = np.zeros((n_channels, *self.shape), dtype=np.float32)
        self.counts = np.zeros((n_channels, *self.shape), dtype=np.int32)

    def add(self, aff: np.ndarray, valid: np.ndarray, y: int, x: int, weights: np.ndarray | None = None) -> None:
        """Add one patch's affinities (C, h, w) at its top-left corner (y, x); ``weights`` (C, h, w)
        whole numbers >= 1 from ``patch_weights`` (None: every pair counts once)."""
        _, h, w = aff.shape
        sl = (slice(None), slice(y, y + h), slice(x, x + w))
        vote = valid.astype(np.int32) if weights is None else valid * weights
        self.sums[sl] += aff * vote
        self.counts[sl] += vote

    def merge(self, sums: np.ndarray, counts: np.ndarray) -> None:
        """Add another accumulator's sums and counts (e.g. another rank's, or a saved partial)."""
        self.sums += sums
        self.counts += counts

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(aff float32 (C, H, W), valid bool (C, H, W)); aff is 0 where no patch saw a pair."""
        valid = self.counts > 0
        aff = np.divide(self.sums, self.counts, out=np.zeros_like(self.sums), where=valid)
        return aff.astype(np.float32), valid
