"""Small fragments join the neighbour they share most boundary with."""

from __future__ import annotations

import numpy as np

from inpaintaff.segment.postprocess import drop_small_objects, merge_small_segments


def test_small_segments_join_longest_shared_boundary():
    labels = np.zeros((10, 10), np.int64)
    labels[:, :5], labels[:, 5:] = 1, 2
    labels[0, 4] = 3  # touches 1 on two sides, 2 on one
    labels[5:7, 9] = 4  # inside 2
    out = merge_small_segments(labels, min_size=3)
    expected = np.zeros_like(labels)
    expected[:, :5], expected[:, 5:] = 1, 2
    np.testing.assert_array_equal(out, expected)


def test_isolated_fragments_and_large_segments_stay():
    labels = np.zeros((12, 12), np.int64)
    labels[:6, :6] = 5
    labels[10, 10] = 9  # touches no other segment (background around it)
    labels[:6, 6:8] = 7  # 12 px, large enough
    out = merge_small_segments(labels, min_size=5)
    assert out.max() == 3 and out[10, 10] > 0 and len(np.unique(out)) == 4
    assert (out[:6, :6] != out[:6, 6:8][0, 0]).all()


def test_chain_of_small_segments_resolves():
    labels = np.zeros((4, 12), np.int64)
    labels[:, :8] = 1
    labels[:, 8:10] = 2  # small, touches 1 and 3
    labels[:, 10:] = 3  # small, touches only 2
    out = merge_small_segments(labels, min_size=9)
    assert len(np.unique(out)) == 1 and out.max() == 1


def test_off_is_identity():
    labels = np.random.default_rng(0).integers(0, 5, (8, 8))
    assert merge_small_segments(labels, 0) is labels


def test_small_objects_are_dropped_and_the_rest_relabeled():
    labels = np.zeros((10, 12), np.int32)
    labels[0:4, 0:4] = 3  # 16 px
    labels[6:8, 6:8] = 5  # 4 px
    labels[0:3, 8:12] = 7  # 12 px
    out = drop_small_objects(labels, 12)
    assert out.dtype == labels.dtype and sorted(np.unique(out)) == [0, 1, 2]
    assert (out[0:4, 0:4] > 0).all() and (out[0:3, 8:12] > 0).all() and (out[6:8, 6:8] == 0).all()
    assert np.array_equal(drop_small_objects(labels, 0), labels)
