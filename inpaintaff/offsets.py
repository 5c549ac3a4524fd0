"""The affinity neighbourhood (paper appendix C) and affinities computed from a labelling."""

from __future__ import annotations

import numpy as np
import torch

# (dy, dx); the first two are attractive, the rest repulsive (mutex) edges.
OFFSETS: list[list[int]] = [
    [-1, 0], [0, -1],
    [-9, 0], [0, -9], [-9, -9], [9, -9], [-9, -4], [-4, -9], [4, -9], [9, -4],
    [-27, 0], [0, -27],
]
N_ATTRACTIVE = 2
# The longest offset along an axis: a patch needs at least MAX_OFFSET + 1 pixels to hold such a pair.
MAX_OFFSET = max(abs(c) for o in OFFSETS for c in o)


def shifted_slices(shape: tuple[int, int], offset: tuple[int, int]) -> tuple[tuple[slice, slice], ...]:
    """Slices (src, dst) such that src pixel (y, x) pairs with dst pixel (y+dy, x+dx)."""
    src, dst = [], []
    for n, d in zip(shape, offset):
        if d >= 0:
            src.append(slice(0, max(n - d, 0)))
            dst.append(slice(d, n))
        else:
            src.append(slice(-d, n))
            dst.append(slice(0, max(n + d, 0)))
    return tuple(src), tuple(dst)


def affinities_from_labels(
    labels: np.ndarray,
    offsets: list[list[int]] | None = None,
    ignore_background: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of a labelling: aff[c, y, x] = 1 if (y, x) and (y+dy, x+dx) share a label.

    Returns ``(aff, valid)``: float32 (C, H, W) and bool (C, H, W); pairs leaving the image are
    invalid (aff 0). With ``ignore_background``, pairs touching label 0 are invalid too.
    """
    offsets = OFFSETS if offsets is None else offsets
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2D, got shape {labels.shape}")
    aff = np.zeros((len(offsets),) + labels.shape, dtype=np.float32)
    valid = np.zeros(aff.shape, dtype=bool)
    for c, off in enumerate(offsets):
        s, d = shifted_slices(labels.shape, tuple(off))
        a, b = labels[s], labels[d]
        aff[c][s] = a == b
        v = np.ones(a.shape, dtype=bool)
        if ignore_background:
            v &= (a != 0) & (b != 0)
        valid[c][s] = v
        aff[c][s] *= v
    return aff, valid


def affinities_from_labels_torch(
    labels: torch.Tensor,
    offsets: list[list[int]] | None = None,
    ignore_label: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched torch version of :func:`affinities_from_labels` for labels (B, H, W).

    Returns float (B, C, H, W) affinities and bool validity; pairs leaving the image, and pairs
    touching ``ignore_label`` if given, are invalid.
    """
    offsets = OFFSETS if offsets is None else offsets
    b, h, w = labels.shape
    aff = labels.new_zeros((b, len(offsets), h, w), dtype=torch.float32)
    valid = torch.zeros((b, len(offsets), h, w), dtype=torch.bool, device=labels.device)
    for c, off in enumerate(offsets):
        s, d = shifted_slices((h, w), tuple(off))
        a, n = labels[(slice(None), *s)], labels[(slice(None), *d)]
        v = torch.ones_like(a, dtype=torch.bool)
        if ignore_label is not None:
            v = (a != ignore_label) & (n != ignore_label)
        aff[(slice(None), c, *s)] = ((a == n) & v).float()
        valid[(slice(None), c, *s)] = v
    return aff, valid
