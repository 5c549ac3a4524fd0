"""Affinities from patch leaves, their accumulation over sliding patches, and the TIFF files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintaff.igm.affinities import AffinityAccumulator, patch_affinities
from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata, write_affinities
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.tasks.inpaintaff.patches import sliding_positions
from inpaintaff.utils.errors import InputError


def _labels(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Blocky labels with a few regions, some of them touching the border."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), dtype=np.int64)
    for k in range(1, 7):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        lab[y : y + rng.integers(6, 30), x : x + rng.integers(6, 30)] = k
    return lab


def test_patch_affinities_equal_those_of_the_labels() -> None:
    leaves = np.stack([_labels(40, 48, s) for s in range(3)])
    aff, valid = patch_affinities(torch.from_numpy(leaves))
    assert aff.shape == (3, len(OFFSETS), 40, 48) and valid.shape == (len(OFFSETS), 40, 48)
    for p in range(3):
        ref_aff, ref_valid = affinities_from_labels(leaves[p])
        np.testing.assert_array_equal(valid.numpy(), ref_valid)
        np.testing.assert_array_equal(aff[p].numpy().astype(np.float32), ref_aff)


def test_sliding_patches_of_one_labelling_average_to_its_affinities() -> None:
    lab = _labels(70, 90, seed=3)
    size, stride = 32, 12
    acc = AffinityAccumulator(lab.shape)
    pos = [(y, x) for y in sliding_positions(70, size, stride) for x in sliding_positions(90, size, stride)]
    rng = np.random.default_rng(0)
    for i in rng.permutation(len(pos)):  # order must not matter
        y, x = pos[i]
        patch = torch.from_numpy(lab[y : y + size, x : x + size])[None]
        a, v = patch_affinities(patch)
        acc.add(a[0].numpy(), v.numpy(), y, x)
    aff, valid = acc.result()
    ref_aff, ref_valid = affinities_from_labels(lab)
    # Short-range pairs are all seen; a long-range pair only if some patch holds both pixels.
    np.testing.assert_array_equal(valid[:2], ref_valid[:2])
    assert not (valid & ~ref_valid).any() and valid[2:].mean() > 0.5
    np.testing.assert_array_equal(aff[valid], ref_aff[valid])
    assert aff.dtype == np.float32


def test_averaging_gives_fractions_where_patches_disagree() -> None:
    acc = AffinityAccumulator((4, 6), n_channels=2)
    one = np.ones((2, 4, 4), dtype=bool)
    acc.add(one, one, 0, 0)
    acc.add(~one, one, 0, 2)
    aff, valid = acc.result()
    assert valid.all()
    np.testing.assert_allclose(aff[:, :, 2:4], 0.5)
    np.testing.assert_allclose(aff[:, :, :2], 1.0)


def test_sliding_positions_cover_the_image() -> None:
    assert sliding_positions(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert sliding_positions(32, 32, 8) == [0]


def test_write_and_read_round_trip(tmp_path) -> None:
    aff = np.random.default_rng(0).random((len(OFFSETS), 20, 30)).astype(np.float32)
    valid = aff > 0.2
    path = aff_path(tmp_path, "DS", "01", 7)
    assert path == tmp_path / "DS" / "01_AFF" / "aff007.tif"
    write_affinities(path, aff, valid, metadata={"patch_size": 32})
    got, got_valid, offsets = read_affinities(path)
    np.testing.assert_array_equal(got, aff)
    np.testing.assert_array_equal(got_valid, valid)
    assert offsets == OFFSETS
    assert read_affinity_metadata(path)["patch_size"] == 32
    assert not list(path.parent.glob(".*tmp*"))  # atomic: no temp file left


def test_bad_affinity_files_are_input_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_affinities(tmp_path / "missing.tif")
    import tifffile

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((12, 5, 5), np.float32))
    with pytest.raises(InputError, match=str(plain.name)):
        read_affinities(plain)
    with pytest.raises(InputError, match="offsets"):
        write_affinities(tmp_path / "x.tif", np.zeros((3, 4, 4)), np.zeros((3, 4, 4), bool))


def test_affinity_picture_channels() -> None:
    from inpaintaff.viz.affinity import affinity_rgb

    aff = np.ones((12, 4, 5), dtype=np.float32)
    aff[1, :, 2] = 0  # a boundary across x at column 2
    valid = np.ones_like(aff, dtype=bool)
    valid[:, 0, :] = False  # an unseen row
    rgb = affinity_rgb(aff, valid)
    np.testing.assert_allclose(rgb[1:, 0], [[1, 1, 0]] * 3)  # inside: yellow
    np.testing.assert_allclose(rgb[1:, 2], [[0, 1, 0]] * 3)  # x-boundary: green
    np.testing.assert_allclose(rgb[0, 0], [0.5, 0.5, 0.5])  # unseen: grey


def test_tent_weights_favour_the_patch_centre_and_keep_agreeing_votes_exact() -> None:
    from inpaintaff.igm.affinities import patch_weights

    assert patch_weights(16, "uniform") is None
    with pytest.raises(ValueError, match="patch weighting"):
        patch_weights(16, "gaussian")
    w = patch_weights(16, "tent")
    _, valid = patch_affinities(torch.zeros(1, 16, 16, dtype=torch.long))
    valid = valid.numpy()
    assert w.dtype == np.int32 and (w[valid] >= 1).all() and (w[~valid] == 0).all()
    assert w[0, 8, 8] == 8 and w[0, 1, 8] == 1  # channel 0 pairs (y, x) with (y - 1, x)
    # Patches that agree give the same affinities however they are weighted; where they disagree,
    # the patch that holds the pair nearer its centre weighs more.
    lab = _labels(24, 24, seed=1)
    acc, weighted = AffinityAccumulator(lab.shape), AffinityAccumulator(lab.shape)
    for y, x in [(0, 0), (8, 8), (0, 8), (8, 0)]:
        a, v = patch_affinities(torch.from_numpy(lab[y : y + 16, x : x + 16])[None])
        acc.add(a[0].numpy(), v.numpy(), y, x)
        weighted.add(a[0].numpy(), v.numpy(), y, x, w)
    np.testing.assert_array_equal(acc.result()[0], weighted.result()[0])
    one = np.ones((len(OFFSETS), 16, 16), dtype=bool)
    split = AffinityAccumulator((16, 24))
    split.add(one, valid, 0, 0, w)  # votes 1, pair (8, 14) near this patch's edge
    split.add(~one, valid, 0, 8, w)  # votes 0, the same pair near this patch's centre
    aff, _ = split.result()
    assert aff[1, 8, 14] < 0.5 < aff[1, 8, 9]
