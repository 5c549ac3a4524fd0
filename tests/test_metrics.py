"""CTC SEG and detection over IoU thresholds: hand-made cases, py-ctcmetrics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintaff.io.ctc import write_labels
from inpaintaff.metrics.ctc import pool_seg, seg_frame
from inpaintaff.metrics.detection import detection_frame, pool_detection
from inpaintaff.metrics.overlap import overlap
from inpaintaff.utils.errors import InputError


def boxes(shape=(40, 40)) -> np.ndarray:
    lab = np.zeros(shape, dtype=np.int64)
    lab[2:12, 2:12] = 1
    lab[2:12, 12:22] = 2  # same size as 1, touching it
    lab[20:35, 5:30] = 3
    return lab


def test_perfect_match_is_one_and_label_names_do_not_matter():
    gt = boxes()
    pred = np.where(gt > 0, 100 - gt, 0)
    r = seg_frame(gt, pred)
    assert r.seg == 1.0 and r.n_gt == 3 and r.n_matched == 3
    d = detection_frame(gt, pred, thresholds=[0.5, 0.9])
    assert d.tp.tolist() == [3, 3] and d.fp.tolist() == [0, 0] and d.fn.tolist() == [0, 0]
    assert d.accuracy.tolist() == [1.0, 1.0]


def test_merge_of_two_equal_objects():
    """1 and 2 merged into S: the >0.5 rule is relative to the GT object (|R∩S| = |R| > 0.5|R|),
    so both match S, each with Jaccard |R| / |S| = 0.5; object 3 scores 1."""
    gt = boxes()
    pred = gt.copy()
    pred[pred == 2] = 1
    r = seg_frame(gt, pred)
    np.testing.assert_allclose(np.sort(r.jaccard), [0.5, 0.5, 1.0])
    assert r.seg == pytest.approx(2.0 / 3.0)
    # Detection is one-to-one: the merged object counts for at most one GT object.
    d = detection_frame(gt, pred, thresholds=[0.3, 0.5])
    assert d.tp.tolist() == [2, 1]  # IoU 0.5 passes > 0.3 but not > 0.5
    assert d.fn.tolist() == [1, 2] and d.fp.tolist() == [0, 1]


def test_unmatched_objects_score_zero_and_false_positives_do_not_count():
    gt = boxes()
    pred = np.zeros_like(gt)
    pred[gt == 3] = 7
    pred[36:39, 36:39] = 8  # a false positive
    r = seg_frame(gt, pred)
    assert r.n_gt == 3 and r.n_matched == 1
    assert r.seg == pytest.approx(1.0 / 3.0)
    # An object covering exactly half of a GT object does not match (needs > 0.5).
    half = np.zeros_like(gt)
    half[2:7, 2:12] = 1
    assert seg_frame(gt, half).n_matched == 0
    d = detection_frame(gt, pred, thresholds=[0.5])
    assert (d.tp[0], d.fp[0], d.fn[0]) == (1, 1, 2)
    assert d.precision[0] == 0.5 and d.recall[0] == pytest.approx(1 / 3)
    assert d.f1[0] == pytest.approx(2 / 5) and d.accuracy[0] == pytest.approx(1 / 4)


def test_split_gt_object():
    gt = np.zeros((10, 20), dtype=np.int64)
    gt[2:8, 2:18] = 1
    pred = np.zeros_like(gt)
    pred[2:8, 2:12] = 1  # 60 of 96 pixels -> matches, Jaccard 60/96
    pred[2:8, 12:18] = 2
    assert seg_frame(gt, pred).seg == pytest.approx(60 / 96)


def test_pooled_over_frames_weighs_objects_not_frames():
    gt1, gt2 = boxes(), np.zeros((40, 40), dtype=np.int64)
    gt2[5:15, 5:15] = 4
    r1 = seg_frame(gt1, gt1)  # 3 objects, all 1
    r2 = seg_frame(gt2, np.zeros_like(gt2))  # 1 object, 0
    assert pool_seg([r1, r2]).seg == pytest.approx(3 / 4)
    d = pool_detection([detection_frame(gt1, gt1), detection_frame(gt2, np.zeros_like(gt2))])
    assert d.tp[0] == 3 and d.fn[0] == 1


def test_sparse_gt_evaluates_only_labeled_objects():
    gt = boxes()
    gt[gt == 3] = 0  # object 3 unlabeled in a sparse frame
    pred = boxes()
    assert seg_frame(gt, pred).seg == 1.0
    dense = detection_frame(gt, pred, thresholds=[0.5])
    sparse = detection_frame(gt, pred, thresholds=[0.5], sparse_gt=True)
    assert dense.fp[0] == 1 and sparse.fp[0] == 0


def test_one_to_one_matching_below_half():
    """At IoU > 0.2 one predicted object overlapping two GT objects is matched to one only."""
    gt = np.zeros((10, 30), dtype=np.int64)
    gt[:, 0:10], gt[:, 10:20] = 1, 2
    pred = np.zeros_like(gt)
    pred[:, 5:25] = 1  # IoU with GT 1: 50/250 = 0.2, with GT 2: 100/200 = 0.5
    pred[:, 0:5] = 2  # IoU with GT 1: 50/100 = 0.5
    d = detection_frame(gt, pred, thresholds=[0.1, 0.4])
    # Pairing GT 1 with pred 1 (0.2) would leave one match; the assignment finds two.
    assert d.tp.tolist() == [2, 2]


def test_labels_above_uint16_and_bad_shapes():
    gt = boxes()
    big = gt.copy()
    big[big == 3] = 70000
    with pytest.raises(InputError, match="uint16"):
        seg_frame(gt, big)
    with pytest.raises(InputError, match="uint16"):
        detection_frame(big, gt)
    with pytest.raises(InputError, match="shape"):
        seg_frame(gt, gt[:10])
    with pytest.raises(InputError, match="integer"):
        seg_frame(gt, gt.astype(np.float32))
    with pytest.raises(InputError, match="non-negative"):
        seg_frame(gt, -gt)


def test_many_objects_dense_and_sparse_tables_agree():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3000, size=(60, 60))
    pred = rng.integers(0, 3000, size=(60, 60))
    ov = overlap(gt, pred)
    import inpaintaff.metrics.overlap as om

    old = om._DENSE_LIMIT
    try:
        om._DENSE_LIMIT = 0
        ov2 = overlap(gt, pred)
    finally:
        om._DENSE_LIMIT = old
    assert (ov.inter != ov2.inter).nnz == 0
    assert ov.inter.sum() == ((gt > 0) & (pred > 0)).sum()


def _random_instances(rng: np.random.Generator, shape=(48, 64), n=12) -> np.ndarray:
    lab = np.zeros(shape, dtype=np.int64)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for k in range(1, n + 1):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        ry, rx = rng.integers(3, 10, size=2)
        lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = k
    return lab


@pytest.mark.slow
def test_seg_equals_py_ctcmetrics(tmp_path):
    ctc = pytest.importorskip("ctc_metrics")
    from ctc_metrics.metrics import seg as ctc_seg
    from ctc_metrics.scripts.evaluate import match_computed_to_reference_masks

    rng = np.random.default_rng(42)
    gt_dir, res_dir = tmp_path / "01_GT" / "SEG", tmp_path / "01_RES"
    gts, preds, refs, comps = [], [], [], []
    for frame in range(4):
        gt = _random_instances(rng)
        pred = gt.copy()
        # Perturb: shift, merge two, drop one, add a false positive, relabel.
        pred = np.roll(pred, int(rng.integers(-2, 3)), axis=1)
        ids = np.unique(gt)[1:]
        if ids.size > 3:
            pred[pred == ids[1]] = ids[0]
            pred[pred == ids[2]] = 0
        pred[40:46, 55:62] = 99
        pred = np.where(pred > 0, pred * 3 + 1, 0)
        if frame == 2:  # a sparse GT frame
            gt[np.isin(gt, ids[::2])] = 0
        gts.append(gt)
        preds.append(pred)
        refs.append(str(write_labels(gt_dir / f"man_seg{frame:03d}.tif", gt)))
        comps.append(str(write_labels(res_dir / f"mask{frame:03d}.tif", pred)))
    segm = match_computed_to_reference_masks(refs, comps, threads=1)
    expected = ctc_seg(segm["labels_ref"], segm["ious"])
    ours = pool_seg(seg_frame(g, p) for g, p in zip(gts, preds)).seg
    assert 0.2 < ours < 0.99
    assert ours == pytest.approx(expected, abs=1e-9)
    assert ctc is not None
