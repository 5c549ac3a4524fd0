"""TRUEFG, foreground from probability maps, connected components."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from inpaintaff.io.foreground import foreground_from_probability
from inpaintaff.segment.baselines import connected_components
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.utils.errors import InputError


def two_boxes(gap: int, diagonal: bool = False) -> np.ndarray:
    lab = np.zeros((30, 40), dtype=np.int64)
    lab[5:25, 5:18] = 1
    lab[5:25, 18 + gap : 35] = 2
    if diagonal:  # a staircase gap of one pixel between two triangles
        lab[:] = 0
        yy, xx = np.mgrid[:30, :40]
        lab[(xx + yy < 30) & (lab == 0)] = 1
        lab[xx + yy > 30] = 2
    return lab


@pytest.mark.parametrize("gap,joined", [(0, True), (1, True), (2, False), (3, False)])
def test_truefg_closes_one_pixel_gaps_only(gap, joined):
    lab = two_boxes(gap)
    fg = true_foreground(lab)
    assert fg.dtype == bool
    assert (fg[lab > 0]).all()
    n = connected_components(fg).max()
    assert n == (1 if joined else 2)
    # Only gap pixels are added, nothing else around the objects.
    added = fg & (lab == 0)
    assert added.sum() == (20 if gap == 1 else 0)


def test_truefg_closes_diagonal_gap():
    lab = two_boxes(0, diagonal=True)
    assert connected_components(lab > 0).max() == 2
    assert connected_components(true_foreground(lab)).max() == 1


def test_truefg_keeps_a_segments_own_notch():
    lab = np.zeros((20, 20), dtype=np.int64)
    lab[5:15, 5:15] = 1
    lab[10, 5:10] = 0  # a one-pixel slit inside one object
    fg = true_foreground(lab)
    assert not fg[10, 6:9].any()


def test_truefg_rejects_non_integer_labels():
    with pytest.raises(InputError, match="integers"):
        true_foreground(np.zeros((5, 5), dtype=np.float32))


def test_foreground_from_probability_array_and_file(tmp_path):
    prob = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    fg = foreground_from_probability(prob, threshold=0.5)
    np.testing.assert_array_equal(fg, prob > 0.5)
    assert foreground_from_probability(prob, threshold=0.9).sum() < fg.sum()
    path = tmp_path / "fg.tif"
    tifffile.imwrite(path, prob)
    np.testing.assert_array_equal(foreground_from_probability(path, 0.5, shape=(10, 10)), fg)


def test_foreground_from_probability_errors(tmp_path):
    prob = np.full((10, 10), 0.3, dtype=np.float32)
    with pytest.raises(InputError, match="does not match the image shape"):
        foreground_from_probability(prob, shape=(12, 10))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        foreground_from_probability(prob * 5)
    bad = prob.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        foreground_from_probability(bad)
    with pytest.raises(InputError, match="not found"):
        foreground_from_probability(tmp_path / "missing.tif")


def test_connected_components_connectivity():
    fg = np.zeros((6, 6), bool)
    fg[1, 1] = fg[2, 2] = True
    assert connected_components(fg).max() == 2
    assert connected_components(fg, connectivity=2).max() == 1
    assert connected_components(fg).dtype == np.int64
