"""The affinity neighbourhood (paper appendix C) and affinities computed from a labelling."""

from __future__ import annotations

from collections.abc import Sequence

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

Labels = np.ndarray | torch.Tensor


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


def label_affinities(
    labels: Labels, offsets: Sequence[Sequence[int]] | None = None, ignore_label: int | None = None
) -> tuple[Labels, Labels]:
    """Same-label indicators of the pixel pairs of labels (..., H, W), numpy or torch.

    Returns ``(same, valid)``, both bool (..., C, H, W) of the input's kind: ``valid`` where both
    ends lie in the image and, with ``ignore_label``, neither end has that label; ``same`` where the
    pair is valid and both ends share a label.
    """
    offsets = OFFSETS if offsets is None else offsets
    *lead, h, w = labels.shape
    shape = (*lead, len(offsets), h, w)
    if isinstance(labels, torch.Tensor):
        same = torch.zeros(shape, dtype=torch.bool, device=labels.device)
        valid = torch.zeros(shape, dtype=torch.bool, device=labels.device)
    else:
        same, valid = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for c, off in enumerate(offsets):
        s, d = shifted_slices((h, w), (int(off[0]), int(off[1])))
        a, b = labels[(..., *s)], labels[(..., *d)]
        if ignore_label is None:
            valid[(..., c, *s)] = True
            same[(..., c, *s)] = a == b
        else:
            v = (a != ignore_label) & (b != ignore_label)
            valid[(..., c, *s)] = v
            same[(..., c, *s)] = (a == b) & v
    return same, valid


def affinities_from_labels(
    labels: np.ndarray,
    offsets: list[list[int]] | None = None,
    ignore_background: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of a labelling: aff[c, y, x] = 1 if (y, x) and (y+dy, x+dx) share a label.

    Returns ``(aff, valid)``: float32 (C, H, W) and bool (C, H, W); pairs leaving the image are
    invalid (aff 0). With ``ignore_background``, pairs touching label 0 are invalid too.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2D, got shape {labels.shape}")
    same, valid = label_affinities(labels, offsets, 0 if ignore_background else None)
    return same.astype(np.float32), valid


def affinities_from_labels_torch(
    labels: torch.Tensor,
    offsets: list[list[int]] | None = None,
    ignore_label: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched torch version of :func:`affinities_from_labels` for labels (B, H, W).

    Returns float (B, C, H, W) affinities and bool validity; pairs leaving the image, and pairs
    touching ``ignore_label`` if given, are invalid.
    """
    same, valid = label_affinities(labels, offsets, ignore_label)
    return same.float(), valid


def inside_pairs(shape: tuple[int, int], offsets: Sequence[Sequence[int]] = OFFSETS) -> np.ndarray:
    """(C, H, W) True where the pixel pair of each offset lies inside an image of ``shape``."""
    valid = np.zeros((len(offsets), *shape), dtype=bool)
    for c, off in enumerate(offsets):
        src, _ = shifted_slices(shape, tuple(off))
        valid[c][src] = True
    return valid
