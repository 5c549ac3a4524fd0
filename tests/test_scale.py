"""Nucleus size: resizing to the model's scale and back, checkpoints that record their size, the
same instances at 0.5×, 1× and 2× the HeLa size, and the CTC tasks' files at the model's scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaintaff import Segmenter
from inpaintaff.data.synthetic import synthetic_frame
from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata
from inpaintaff.metrics.ctc import seg_from_overlap
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.diameter import median_diameter
from inpaintaff.segment.scale import decide_scale, labels_to_shape, rescale_image, scaled_shape
from inpaintaff.tasks import run_task
from inpaintaff.tasks.checkpoints import checkpoint_diameter
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.resolvers import CHECKPOINT_DIR


def test_factors_snap_to_one_within_the_tolerance() -> None:
    assert decide_scale(25.0, 24.0, "given", 0.1).factor == 1.0
    d = decide_scale(25.0, 50.0, "given", 0.1)
    assert d.factor == pytest.approx(0.5) and d.raw_factor == pytest.approx(0.5) and d.source == "given"
    assert decide_scale(25.0, None, "estimated").factor == 1.0
    assert decide_scale(None, 40.0, "given").factor == 1.0


def test_resizing_shapes_and_labels_round_trip() -> None:
    img = np.random.default_rng(0).random((50, 71)).astype(np.float32)
    assert rescale_image(img, 0.5).shape == scaled_shape(img.shape, 0.5) == (25, 36)
    assert rescale_image(img, 2.0).shape == (100, 142)
    # Shrinking is anti-aliased: a checkerboard becomes its mean, not an alias of it.
    board = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)
    assert np.abs(rescale_image(board, 0.25) - 0.5).max() < 0.05
    labels = np.random.default_rng(1).integers(0, 5, (30, 40))
    np.testing.assert_array_equal(labels_to_shape(labels_to_shape(labels, (60, 80)), (30, 40)), labels)
    assert set(np.unique(labels_to_shape(labels, (13, 17)))) <= set(np.unique(labels))


def test_shipped_checkpoints_record_their_nucleus_size() -> None:
    for name in ("hela_distill_cpu", "hela_distill_tuned_cpu", "hela_fgnet_cpu", "hela_affnet_cpu", "hela_inpaint_cpu"):
        # 25.03: measured on the GT of 013 and 052; 25: data.diameter of data=shared_hela (later checkpoints)
        assert checkpoint_diameter(CHECKPOINT_DIR / f"{name}.ckpt") == pytest.approx(25.0, abs=0.05)


@pytest.fixture(scope="module")
def hela_sized() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic nuclei of about the HeLa size (median diameter ≈ 22 px), a few touching."""
    raw, labels = synthetic_frame((192, 192), seed=3, radius=12.5, density=0.3)
    return raw.astype(np.float32), labels


def _seg(gt: np.ndarray, pred: np.ndarray) -> float:
    return seg_from_overlap(overlap(gt, pred)).seg


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_the_same_instances_at_half_and_twice_the_size(hela_sized, factor: float) -> None:
    """With the true foreground (so that only the affinities' scale matters): nuclei at 0.5× and 2×
    are segmented like the 1× ones after scaling back, while without resizing 2× nuclei shatter."""
    raw, gt = hela_sized
    seg = Segmenter.pretrained("hela", foreground_source="truefg")
    base = seg.segment(raw, labels=gt)
    base_seg = _seg(gt, base.labels)
    assert base_seg > 0.75
    image, gt_f = rescale_image(raw, factor), labels_to_shape(gt, scaled_shape(raw.shape, factor))
    for diameter in (None, median_diameter(gt) * factor):  # estimated, and given
        res = seg.segment(image, diameter=diameter, labels=gt_f)
        assert res.scale.factor == pytest.approx(1 / factor, rel=0.3)
        back = labels_to_shape(res.labels, gt.shape)
        assert _seg(gt, back) > base_seg - 0.1, (diameter, res.scale)
        assert _seg(base.labels, back) > 0.7  # the same instances as at 1x
    if factor == 2.0:
        off = Segmenter.pretrained("hela", foreground_source="truefg", scale=False).segment(image, labels=gt_f)
        assert _seg(gt_f, off.labels) < base_seg - 0.3  # the failure that resizing repairs


def test_ctc_tasks_work_at_the_model_scale_and_equal_the_api(compose, tmp_path: Path, synthetic_root: Path) -> None:
    """task=affnet writes affinities at the checkpoint's nucleus size with the factor; task=segment
    segments there and writes masks at the input's shape, equal to the Python API's."""
    ckpt = CHECKPOINT_DIR / "hela_distill_cpu.ckpt"
    aff_dir = tmp_path / "aff"
    base = [f"ckpt={ckpt}", "task.split=test", f"task.out_dir={aff_dir}", "data.splits.test=[{seq: '02', frames: [2]}]"]
    run_task(compose("predict", ["task=affnet", *base]))
    aff, valid, _ = read_affinities(aff_path(aff_dir, "SYNTH-HeLa", "02", 2))
    meta = read_affinity_metadata(aff_path(aff_dir, "SYNTH-HeLa", "02", 2))
    factor = checkpoint_diameter(ckpt) / 18.0  # data.diameter of the synthetic data
    assert meta["scale_factor"] == pytest.approx(factor) and meta["input_shape"] == [256, 256]
    assert aff.shape[1:] == scaled_shape((256, 256), factor) and valid.any()
    # A kept file resized otherwise is an error naming the difference.
    with pytest.raises(InputError, match=r"resized otherwise .*scale.diameter: 18.0 in the file, 30.0 now"):
        run_task(compose("predict", ["task=affnet", *base, "data.diameter=30"]))

    out = tmp_path / "seg"
    cfg = compose("predict", ["task=segment", "task.split=test", "data.splits.test=[{seq: '02', frames: [2]}]",
                              "task.affinities.source=dir", f"task.affinities.dir={aff_dir}", "task.alpha=3.0",
                              "task.mws.min_size=100", f"task.res_root={out}", "task.overlays=false"])
    result = run_task(cfg)
    mask = __import__("tifffile").imread(out / "SYNTH-HeLa" / "02_RES" / "mask002.tif")
    assert mask.shape == (256, 256) and result["seg"] is not None
    from inpaintaff.data.datamodule import CTCDataModule

    dm = CTCDataModule(synthetic_root, "SYNTH-HeLa", {"test": [{"seq": "02", "frames": [2]}]})
    ref = dm.frames("test")[0]
    # (task=segment, the paper's protocol, drops no specks: min_area_fraction is the folder command's)
    seg = Segmenter.from_checkpoints(ckpt, foreground_source="truefg", alpha=3.0, min_size=100, fill_holes=False,
                                     seed=int(cfg.seed), min_area_fraction=0.0)
    api = seg.segment(dm.load_image(ref), diameter=18.0, labels=dm.load_labels(ref), normalized=True)
    np.testing.assert_array_equal(api.labels, mask)


def test_an_image_shrunk_below_a_tile_and_the_offsets_still_segments() -> None:
    """Large nuclei in a small image: resized to 19 px, below the offsets' reach (27 px); the nets
    see a padded image and the labels come back at the input's shape."""
    raw, gt = synthetic_frame((48, 56), seed=5, radius=16.0, density=0.4)
    res = Segmenter.pretrained("hela").segment(raw.astype(np.float32), diameter=64.0)
    assert res.scale.factor == pytest.approx(25.03 / 64.0, rel=1e-3)
    assert res.model_shape == scaled_shape(raw.shape, res.scale.factor) and min(res.model_shape) < 27
    assert res.labels.shape == raw.shape and res.labels.max() >= 1
