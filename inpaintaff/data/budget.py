"""The label budget of the paper's appendix B: few labeled frames, cropped to at most N instances."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

LABEL_DRAWS = ("random", "by_shape")


def choose_label_frames(candidates: Sequence, n_frames: int | None, seed: int,
                        groups: Sequence[Hashable] | None = None) -> list:
    """A seeded random subset of ``n_frames`` labeled frames (all of them when ``n_frames`` is None).

    With ``groups`` (one key per candidate, e.g. its image shape, a proxy for how it was acquired)
    the frames are drawn in turn from each group, largest group first, so that every kind of image
    in a mixed folder gets labels before any kind gets a second frame."""
    if n_frames is None or n_frames >= len(candidates):
        return list(candidates)
    if n_frames < 1:
        raise ValueError(f"label_frames must be >= 1, got {n_frames}")
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.choice(len(candidates), size=n_frames, replace=False)
        return [candidates[i] for i in sorted(idx)]
    if len(groups) != len(candidates):
        raise ValueError(f"{len(groups)} group keys for {len(candidates)} frames")
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    queues = [list(rng.permutation(m)) for m in sorted(members.values(), key=lambda m: (-len(m), m[0]))]
    chosen: list[int] = []
    while len(chosen) < n_frames:
        for queue in queues:
            if queue and len(chosen) < n_frames:
                chosen.append(int(queue.pop(0)))
    return [candidates[i] for i in sorted(chosen)]


def count_instances(labels: np.ndarray) -> int:
    """Number of distinct non-zero labels (instances cut by a crop count as well)."""
    return int(np.count_nonzero(np.unique(labels)))


def budget_crop(labels: np.ndarray, max_instances: int | None) -> tuple[slice, slice]:
    """Centre crop that halves x, then y, then x, ... until at most ``max_instances`` remain.

    Each halving takes away from both sides, so the centre stays fixed (appendix B).
    """
    h, w = labels.shape
    box = [0, h, 0, w]  # y0, y1, x0, x1
    if max_instances is None:
        return slice(0, h), slice(0, w)
    if max_instances < 1:
        raise ValueError(f"max_instances must be >= 1, got {max_instances}")
    axis = 1
    while count_instances(labels[box[0]:box[1], box[2]:box[3]]) > max_instances:
        lo, hi = box[2 * axis], box[2 * axis + 1]
        size = hi - lo
        if size <= 1:
            other = 1 - axis
            if box[2 * other + 1] - box[2 * other] <= 1:
                break
            axis = other
            continue
        new = max(1, size // 2)
        start = lo + (size - new) // 2
        box[2 * axis], box[2 * axis + 1] = start, start + new
        axis = 1 - axis
    return slice(box[0], box[1]), slice(box[2], box[3])
