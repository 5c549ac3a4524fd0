"""Training masks: hole ratios, IGM-shaped masks hide the band, seeding, mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from inpaintaff.data.masks import MaskSampler, band, igm_mask, irregular_mask
from inpaintaff.igm.inpainters import GaussianInpainter
from inpaintaff.igm.split import SplitEngine


@pytest.mark.parametrize("ratio", [0.02, 0.1, 0.3, 0.5, 0.75])
def test_irregular_hole_ratio(ratio):
    rng = np.random.default_rng(1)
    for _ in range(5):
        m = irregular_mask((48, 64), rng, hole_ratio=ratio)
        assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
        assert abs((1 - m.mean()) - ratio) < 0.01


def test_irregular_ratio_drawn_in_range():
    rng = np.random.default_rng(2)
    ratios = [1 - irregular_mask((32, 32), rng, hole_range=(0.2, 0.4)).mean() for _ in range(20)]
    assert min(ratios) >= 0.19 and max(ratios) <= 0.41 and np.std(ratios) > 0.02


def test_igm_mask_hides_band_other_side_and_outside():
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = igm_mask((64, 64), rng, d_range=(2, 5))
        known = m.known.astype(bool)
        assert 2 <= m.d <= 5
        assert not (known & m.band).any()
        assert not (known & ~m.region).any()
        assert not (known & ~m.side).any()
        assert (known == (m.side & ~m.band)).all()
        other = m.region & ~m.side
        if m.side.any() and other.any():
            # the band straddles the boundary: pixels of either side next to the other side
            touching = m.side & ndi.binary_dilation(other)
            assert m.band[touching].all()
            # every known pixel is farther than d from the other side
            dist = ndi.distance_transform_edt(~other)
            assert (dist[known] > m.d).all()


def test_band_by_hand():
    side = np.zeros((1, 9), bool)
    side[0, :4] = True
    other = ~side
    b = band(side, other, 2)
    # disk of radius 2 meets both sides for columns 2..5
    assert b[0].tolist() == [False, False, True, True, True, True, False, False, False]


def test_training_masks_hide_the_engines_band():
    """For the same region, side and d, the IGM training mask hides exactly the engine's band N, and
    knows exactly what the engine's conditional A knows (M \\ N); N is the disk-of-radius-d band."""
    rng = np.random.default_rng(11)
    masks = [igm_mask((48, 56), rng, d_range=(1, 6), p_whole=0.5) for _ in range(12)]
    assert len({m.d for m in masks}) > 1  # one engine call with several d's
    R, M = (torch.from_numpy(np.stack([getattr(m, key) for m in masks]))[:, None] for key in ("region", "side"))
    N = SplitEngine(GaussianInpainter(2.0)).band(R, M, torch.tensor([m.d for m in masks]))[:, 0].numpy()
    for m, n in zip(masks, N):
        np.testing.assert_array_equal(m.band, n)
        np.testing.assert_array_equal(m.known.astype(bool), m.side & ~n)
        other = m.region & ~m.side
        if m.side.any() and other.any():
            reach = (ndi.distance_transform_edt(~m.side) <= m.d) & (ndi.distance_transform_edt(~other) <= m.d)
            np.testing.assert_array_equal(n, reach & m.region)
        assert n.any() == (m.side.any() and other.any())


def test_sampler_is_seeded_and_mixes():
    s = MaskSampler(ratios={"irregular": 0.5, "igm": 0.5})
    a = s.batch(6, (32, 32), np.random.default_rng(7))
    b = s.batch(6, (32, 32), np.random.default_rng(7))
    assert a.shape == (6, 1, 32, 32) and np.array_equal(a, b)
    c = s.batch(6, (32, 32), np.random.default_rng(8))
    assert not np.array_equal(a, c)


def test_sampler_only_igm():
    s = MaskSampler(ratios={"igm": 1.0}, d_range=(1, 3), p_whole=1.0)
    rng = np.random.default_rng(0)
    for m in s.batch(5, (32, 32), rng)[:, 0]:
        # the whole crop split in two: known part is one connected-ish side, some pixels hidden
        assert 0 < m.mean() < 1


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match="families"):
        MaskSampler(ratios={"strokes": 1.0})
    with pytest.raises(ValueError, match="ratios"):
        MaskSampler(ratios={"igm": 0.0})
    with pytest.raises(ValueError, match="d_range"):
        MaskSampler(d_range=(0, 3))
