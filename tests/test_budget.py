"""The label budget: seeded frame choice and centre crops to at most N instances."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintaff.data.budget import budget_crop, choose_label_frames, count_instances


def _grid_labels(h: int, w: int, cell: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy // cell) * (w // cell) + (xx // cell) + 1


def test_choose_label_frames_seeded():
    frames = list(range(10))
    a = choose_label_frames(frames, 3, seed=1)
    assert a == choose_label_frames(frames, 3, seed=1)
    assert len(a) == 3 and len(set(a)) == 3
    assert choose_label_frames(frames, None, seed=1) == frames
    with pytest.raises(ValueError):
        choose_label_frames(frames, 0, seed=1)


def test_choose_label_frames_by_group_covers_every_group_first():
    frames = list(range(12))
    groups = ["a"] * 8 + ["b"] * 3 + ["c"]  # a mixed folder: one kind of image dominates
    for seed in range(5):
        chosen = choose_label_frames(frames, 3, seed=seed, groups=groups)
        assert sorted(groups[i] for i in chosen) == ["a", "b", "c"]
        five = choose_label_frames(frames, 5, seed=seed, groups=groups)
        assert sorted(groups[i] for i in five) == ["a", "a", "b", "b", "c"]  # then the largest groups again
        assert five == choose_label_frames(frames, 5, seed=seed, groups=groups)
    assert len({tuple(choose_label_frames(frames, 3, seed=s, groups=groups)) for s in range(10)}) > 1
    with pytest.raises(ValueError, match="group keys"):
        choose_label_frames(frames, 3, seed=1, groups=groups[:-1])


@pytest.mark.parametrize("n", [1, 5, 10, 30, 64])
def test_budget_crop_counts(n):
    labels = _grid_labels(128, 128, 16)  # 64 cells of 16x16
    sy, sx = budget_crop(labels, n)
    kept = count_instances(labels[sy, sx])
    assert 1 <= kept <= n
    # The crop keeps the centre fixed.
    assert (sy.start + sy.stop) / 2 == pytest.approx(64, abs=1)
    assert (sx.start + sx.stop) / 2 == pytest.approx(64, abs=1)


def test_budget_crop_halves_x_then_y():
    labels = _grid_labels(128, 128, 16)
    # 64 instances; one halving (x first) leaves 8 rows x 4..5 columns.
    sy, sx = budget_crop(labels, 40)
    assert (sy.stop - sy.start, sx.stop - sx.start) == (128, 64)
    sy, sx = budget_crop(labels, 20)
    assert (sy.stop - sy.start, sx.stop - sx.start) == (64, 64)
    assert budget_crop(labels, None) == (slice(0, 128), slice(0, 128))
    assert budget_crop(labels, 64) == (slice(0, 128), slice(0, 128))
