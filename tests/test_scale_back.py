"""Labels made at the model's scale, laid back onto a foreground known at the input's scale."""

import numpy as np

from inpaintaff.segment.scale import labels_onto_foreground, labels_to_shape, scaled_shape


def _disks(shape=(120, 160)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    gt = np.zeros(shape, np.int64)
    for i, (y, x, r) in enumerate(((40, 40, 22), (40, 84, 22), (90, 120, 18), (100, 20, 2)), 1):
        gt[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = i
    return gt


def test_outlines_come_from_the_foreground():
    gt = _disks()
    small = labels_to_shape(gt, scaled_shape(gt.shape, 0.5))
    back = labels_to_shape(small, gt.shape)
    out = labels_onto_foreground(back, gt > 0, reach=3.0)
    assert np.array_equal(out > 0, gt > 0)
    for i in (1, 2, 3):  # large objects keep their identity, edges exact up to the touching line
        ids, counts = np.unique(out[gt == i], return_counts=True)
        assert counts.max() / counts.sum() > 0.97
    assert (back != gt).sum() > (out != gt).sum()


def test_lost_objects_become_new_labels():
    gt = _disks()
    back = np.where(gt == 4, 0, gt)  # the tiny disk vanished at the model's scale
    out = labels_onto_foreground(back, gt > 0, reach=1.0)
    assert len(np.unique(out[gt == 4])) == 1 and out[gt == 4][0] not in (0, 1, 2, 3)
    assert labels_onto_foreground(np.zeros_like(gt), gt > 0, 2.0).max() == 4
