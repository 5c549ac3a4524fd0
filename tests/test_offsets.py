"""Pixel pairs and same-label indicators: numpy and torch agree with a per-pixel reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintaff.offsets import label_affinities

OFFS = [[-1, 0], [0, -1], [2, -3], [-3, 1], [0, 9], [7, 0]]  # the last two leave a 5 x 7 image


def reference(labels: np.ndarray, ignore: int | None) -> tuple[np.ndarray, np.ndarray]:
    h, w = labels.shape
    same = np.zeros((len(OFFS), h, w), bool)
    valid = np.zeros_like(same)
    for c, (dy, dx) in enumerate(OFFS):
        for y in range(h):
            for x in range(w):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    a, b = labels[y, x], labels[y + dy, x + dx]
                    valid[c, y, x] = ignore is None or (a != ignore and b != ignore)
                    same[c, y, x] = valid[c, y, x] and a == b
    return same, valid


@pytest.mark.parametrize("ignore", [None, 0])
def test_label_affinities_match_reference_numpy_and_torch(ignore):
    labels = np.random.default_rng(0).integers(0, 3, (2, 5, 7))
    same, valid = label_affinities(labels, OFFS, ignore)
    t_same, t_valid = label_affinities(torch.from_numpy(labels), OFFS, ignore)
    for i in range(2):
        ref_same, ref_valid = reference(labels[i], ignore)
        np.testing.assert_array_equal(same[i], ref_same)
        np.testing.assert_array_equal(valid[i], ref_valid)
        np.testing.assert_array_equal(t_same[i].numpy(), ref_same)
        np.testing.assert_array_equal(t_valid[i].numpy(), ref_valid)
    assert not valid[:, 4:].any()


def test_inside_pairs_are_the_valid_pairs_of_any_labelling() -> None:
    from inpaintaff.offsets import OFFSETS, affinities_from_labels, inside_pairs

    for shape in ((40, 57), (20, 20), (5, 90)):
        _, valid = affinities_from_labels(np.zeros(shape, np.int32), OFFSETS)
        np.testing.assert_array_equal(inside_pairs(shape), valid)
