"""foreground_errors: 1 − IoU split into outline, unlabeled objects and the rest; the GT outline contrast
of benchmarks/gt_outline_contrast.py."""

import numpy as np
import pytest

from inpaintaff.metrics.foreground import error_shares, foreground_error_counts, foreground_errors


def disk(shape: tuple[int, int], cy: int, cx: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def parts_sum_to_one(e: dict) -> bool:
    return abs(e["iou"] + e["outline"] + e["unlabeled"] + e["missed"] + e["rest"] - 1) < 1e-9


def test_a_perfect_foreground_has_no_errors() -> None:
    truth = disk((64, 64), 30, 30, 10)
    assert foreground_errors(truth, truth) == {"iou": 1.0, "outline": 0.0, "outline_missed": 0.0,
                                                "unlabeled": 0.0, "unlabeled_border": 0.0, "missed": 0.0,
                                                "rest": 0.0}


@pytest.mark.parametrize("r_pred", [9.0, 11.0])
def test_an_outline_one_pixel_off_is_all_outline(r_pred: float) -> None:
    truth = disk((64, 64), 30, 30, 10)
    e = foreground_errors(disk((64, 64), 30, 30, r_pred), truth)
    assert e["iou"] < 0.9
    assert e["outline"] == pytest.approx(1 - e["iou"]) and e["rest"] == 0 and e["unlabeled"] == 0
    assert e["outline_missed"] == (e["outline"] if r_pred < 10 else 0)  # too tight: all missed


def test_objects_the_truth_lacks_are_unlabeled_and_border_ones_counted_apart() -> None:
    truth = disk((64, 64), 30, 30, 10)
    border = np.zeros_like(truth)
    border[:6, 20:30] = True  # a nucleus cut by the image's top edge, absent from the truth
    inner = disk((64, 64), 52, 52, 4)  # an object inside the image, absent from the truth
    e = foreground_errors(truth | border | inner, truth)
    union = (truth | border | inner).sum()
    assert e["unlabeled"] == pytest.approx((border.sum() + inner.sum()) / union)
    assert e["unlabeled_border"] == pytest.approx(border.sum() / union)
    assert e["outline"] == 0 and e["rest"] == 0 and parts_sum_to_one(e)


def test_a_missed_nucleus_is_missed_and_a_deep_hole_is_rest() -> None:
    first, second = disk((64, 64), 20, 20, 8), disk((64, 64), 45, 45, 8)
    pred = first.copy()  # the second nucleus missed entirely
    pred[18:23, 18:23] = False  # a hole deep inside the first
    e = foreground_errors(pred, first | second)
    union = (first | second).sum()
    assert e["missed"] == pytest.approx(second.sum() / union)
    assert e["rest"] == pytest.approx(25 / union)
    assert e["outline"] == 0 and parts_sum_to_one(e)


def test_mixed_errors_sum_to_one_and_iou_is_the_pixel_iou() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((80, 80), bool)
    for cy, cx in rng.integers(10, 70, size=(6, 2)):
        truth |= disk(truth.shape, cy, cx, rng.uniform(4, 9))
    pred = truth ^ (rng.random(truth.shape) < 0.05)
    e = foreground_errors(pred, truth)
    assert e["iou"] == pytest.approx((pred & truth).sum() / (pred | truth).sum())
    assert parts_sum_to_one(e) and min(e.values()) >= 0


def test_counts_of_several_images_pool_by_pixels() -> None:
    a_truth, a_pred = disk((64, 64), 30, 30, 10), disk((64, 64), 30, 30, 9)
    b_truth = disk((32, 32), 15, 15, 6)
    b_pred = b_truth | disk((32, 32), 2, 2, 3)
    ca, cb = foreground_error_counts(a_pred, a_truth), foreground_error_counts(b_pred, b_truth)
    pooled = error_shares({k: ca[k] + cb[k] for k in ca})
    union = (a_pred | a_truth).sum() + (b_pred | b_truth).sum()
    assert pooled["iou"] == pytest.approx(((a_pred & a_truth).sum() + (b_pred & b_truth).sum()) / union)
    assert pooled["outline"] == pytest.approx(ca["outline"] / union) and cb["outline"] == 0
    assert pooled["unlabeled_border"] == pytest.approx(cb["unlabeled"] / union) and parts_sum_to_one(pooled)


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="equal 2D shapes"):
        foreground_errors(np.zeros((4, 4)), np.zeros((4, 5)))


def test_outline_contrast_falls_as_the_gt_is_drawn_further_out() -> None:
    from scipy import ndimage as ndi

    from benchmarks.gt_outline_contrast import outline_contrast

    nucleus = disk((96, 96), 48, 48, 14)
    image = 10 + 100 * ndi.gaussian_filter(nucleus.astype(float), 2)
    tight, drawn_out = nucleus.astype(np.int64), disk((96, 96), 48, 48, 16).astype(np.int64)
    ((ring_tight, outside_tight),) = outline_contrast(image, tight)
    ((ring_out, outside_out),) = outline_contrast(image, drawn_out)
    assert 0 < outside_tight < ring_tight < 1
    assert ring_out < ring_tight and outside_out < outside_tight


def test_redraw_at_contrast_finds_the_gt_outline_at_its_own_level_and_leaves_border_nuclei_out() -> None:
    from scipy import ndimage as ndi

    from benchmarks.gt_outline_contrast import redraw_at_contrast

    nucleus = disk((96, 128), 48, 40, 14)
    cut = disk((96, 128), 48, 127, 10)  # cut by the image's border: not redrawn, not counted
    image = 10 + 100 * ndi.gaussian_filter((nucleus | cut).astype(float), 2)
    labels = nucleus.astype(np.int64) + 2 * cut
    levels = [0.05, 0.3, 0.5, 0.7, 0.95]
    kept, redrawn = redraw_at_contrast(image, labels, levels)
    assert np.array_equal(kept, nucleus)
    ious = {t: (kept & r).sum() / (kept | r).sum() for t, r in redrawn.items()}
    assert not (redrawn[0.05] & cut).any()
    assert ious[0.5] > 0.95  # a blurred disk's edge lies at half its contrast
    assert ious[0.05] < ious[0.3] < ious[0.5] and ious[0.95] < ious[0.7] < ious[0.5]
    assert redrawn[0.05].sum() > nucleus.sum() > redrawn[0.95].sum()
