"""task=segment end to end: synthetic data through the real Hydra config; shared HeLa GT checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from inpaintaff.io import ctc
from inpaintaff.io.affinities import aff_path, write_affinities
from inpaintaff.io.results import RESULT_NAME
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.sources import fill_gaps
from inpaintaff.tasks import run_task
from inpaintaff.utils.errors import InputError

SYNTH = "SYNTH-HeLa"


def test_segment_from_gt_affinities_writes_everything(compose, tmp_path):
    cfg = compose("predict", ["task=segment", "task.split=val"])
    res = run_task(cfg)
    out = tmp_path / "out"
    assert res["seg"] > 0.98 and res["n_gt"] > 50 and res["n_frames"] == 2
    assert res["label"] == "GT-AFF + TRUEFG"
    saved = json.loads((out / RESULT_NAME).read_text())
    assert saved["seg"] == pytest.approx(res["seg"]) and len(saved["frames"]) == 2
    assert len(saved["detection"]["accuracy"]) == 9
    csv_lines = (out / "scores.csv").read_text().splitlines()
    assert csv_lines[0].startswith("seq,frame,seg") and csv_lines[-1].startswith("pooled")
    assert len((out / "detection.csv").read_text().splitlines()) == 10
    for row in res["frames"]:
        mask = ctc.read_labels(row["mask"])
        assert row["mask"].endswith(f"{SYNTH}/02_RES/mask{row['frame']:03d}.tif")
        assert mask.max() == row["n_pred"] and mask.shape == (256, 256)
        assert tifffile.imread(row["mask"]).dtype == np.uint16
        assert (out / "overlays" / f"02_t{row['frame']:03d}.png").stat().st_size > 1000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_noise_alpha_and_cc_baseline(compose):
    base = ["task=segment", "task.split=val", "task.overlays=false"]
    clean = run_task(compose("predict", base))
    noisy = run_task(compose("predict", [*base, "task.affinities.noise=0.2", "task.alpha=0.8"]))
    low = run_task(compose("predict", [*base, "task.affinities.noise=0.2", "task.alpha=0.1"]))
    cc = run_task(compose("predict", [*base, "task.method=cc"]))
    assert cc["label"] == "CC on TRUEFG"
    # The synthetic nuclei touch a lot: connected components merge them, the affinities do not.
    assert cc["seg"] < 0.5 < noisy["seg"] <= clean["seg"]
    assert low["seg"] < noisy["seg"]  # noisy attractive edges win against weak repulsion
    again = run_task(compose("predict", [*base, "task.affinities.noise=0.2", "task.alpha=0.8"]))
    assert again["seg"] == noisy["seg"]  # noise is seeded


def _write_affinity_dir(root, dm_root, frames, crop=None, meta=None):
    """Affinity files as the InpaintAff engine writes them, from the GT labels."""
    for f in frames:
        lab = ctc.read_labels(ctc.gt_seg_path(dm_root, SYNTH, "02", f))
        aff, valid = affinities_from_labels(fill_gaps(lab))
        if crop is not None:
            aff, valid = aff[:, :crop], valid[:, :crop]
        write_affinities(aff_path(root, SYNTH, "02", f), aff, valid, OFFSETS, meta)


def test_affinities_and_foreground_from_folders(compose, tmp_path, synthetic_root):
    aff_dir, fg_dir = tmp_path / "aff", tmp_path / "fg"
    _write_affinity_dir(aff_dir, synthetic_root, [0, 1])
    for f in [0, 1]:
        lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", f))
        prob = np.where(true_foreground(lab), 0.9, 0.1).astype(np.float32)
        ctc.write_image(fg_dir / SYNTH / "02_FG" / f"fg{f:03d}.tif", prob)
    base = ["task=segment", "task.split=val", "task.overlays=false"]
    ref = run_task(compose("predict", base))
    res = run_task(compose("predict", [
        *base, "task.affinities.source=dir", f"task.affinities.dir={aff_dir}",
        "task.foreground.source=dir", f"task.foreground.dir={fg_dir}",
    ]))
    assert res["label"] == "INPAINTAFF + FGNET"
    assert res["seg"] == pytest.approx(ref["seg"])
    for a, b in zip(ref["frames"], res["frames"]):
        np.testing.assert_array_equal(ctc.read_labels(a["mask"]), ctc.read_labels(b["mask"]))
    # Files that say they come from AFFNET name the row AFFNET (task.affinities.kind=auto).
    _write_affinity_dir(tmp_path / "affnet", synthetic_root, [0, 1], meta={"source": "affnet"})
    res2 = run_task(compose("predict", [
        *base, "task.affinities.source=dir", f"task.affinities.dir={tmp_path / 'affnet'}",
        "task.foreground.source=dir", f"task.foreground.dir={fg_dir}",
    ]))
    assert res2["label"] == "AFFNET + FGNET"


def test_partial_affinities_and_crop(compose, tmp_path, synthetic_root):
    """Affinities seen only in a window (a cropped engine run): only that part is segmented and
    scored; task.crop cuts every method to the same window; masks stay full-size."""
    win = (slice(40, 140), slice(60, 200))
    part = tmp_path / "part"
    for f in [0, 1]:
        lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", f))
        aff, valid = affinities_from_labels(fill_gaps(lab))
        # As the engine on a crop: only pairs with both ends inside the window were seen.
        inside = np.zeros_like(valid)
        inside[:, win[0], win[1]] = affinities_from_labels(lab[win])[1]
        valid &= inside
        write_affinities(aff_path(part, SYNTH, "02", f), aff * valid, valid, OFFSETS)
    base = ["task=segment", "task.split=val", "task.overlays=false"]
    res = run_task(compose("predict", [*base, "task.affinities.source=dir", f"task.affinities.dir={part}"]))
    row = res["frames"][0]
    assert 0.2 < row["coverage"] < 0.4
    mask = ctc.read_labels(row["mask"])
    assert mask.shape == (256, 256) and not mask[:30].any() and not mask[:, :50].any()
    assert res["seg"] > 0.9 and row["n_pred"] < 60  # no flood of single-pixel segments outside
    full = run_task(compose("predict", base))
    assert res["n_gt"] < full["n_gt"]

    crop = ["task.crop=[40,60,100,140]"]
    mws = run_task(compose("predict", [*base, *crop]))
    cc = run_task(compose("predict", [*base, *crop, "task.method=cc"]))
    assert mws["n_gt"] == cc["n_gt"] < full["n_gt"]
    m = ctc.read_labels(mws["frames"][0]["mask"])
    assert m.shape == (256, 256) and not m[:40].any() and m[40:140, 60:200].any()
    with pytest.raises(InputError, match="does not fit"):
        run_task(compose("predict", [*base, "task.crop=[200,0,100,10]"]))


def test_bad_affinity_folders_are_clear_errors(compose, tmp_path, synthetic_root):
    base = ["task=segment", "task.split=val", "task.overlays=false", "task.affinities.source=dir"]
    with pytest.raises(InputError, match="aff000.tif: affinity file not found"):
        run_task(compose("predict", [*base, f"task.affinities.dir={tmp_path / 'nothing'}"]))
    with pytest.raises(InputError, match="does not fit"):  # the crop is checked before any file is read
        run_task(compose("predict", [*base, f"task.affinities.dir={tmp_path / 'nothing'}", "task.crop=[900,0,10,10]"]))
    bad = tmp_path / "bad"
    _write_affinity_dir(bad, synthetic_root, [0, 1], crop=100)
    with pytest.raises(InputError, match=r"aff000.tif: affinities of image shape \(100, 256\)"):
        run_task(compose("predict", [*base, f"task.affinities.dir={bad}"]))


def test_frames_without_gt_are_segmented_not_scored(compose, tmp_path, synthetic_root):
    """A CTC folder with a raw frame and no GT: instances and overlays, no scores."""
    root = tmp_path / "ctc"
    raw = ctc.read_image(ctc.raw_path(synthetic_root, SYNTH, "02", 0))
    ctc.write_image(root / "NOGT" / "01" / "t007.tif", raw.astype(np.uint16))
    lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", 0))
    aff, valid = affinities_from_labels(fill_gaps(lab))
    write_affinities(aff_path(tmp_path / "aff", "NOGT", "01", 7), aff, valid, OFFSETS)
    cfg = compose("predict", [
        "task=segment", "task.split=predict", f"data.root={root}", "data.dataset=NOGT", "data.generate=null",
        "data.splits.predict=[{seq: '01', frames: [7]}]", "task.affinities.source=dir",
        f"task.affinities.dir={tmp_path / 'aff'}", "task.foreground.source=all",
    ])
    res = run_task(cfg)
    assert res["seg"] is None and res["detection"] is None and res["n_frames"] == 1
    mask = ctc.read_labels(tmp_path / "out" / "res" / "NOGT" / "01_RES" / "mask007.tif")
    assert mask.min() == 1 and mask.max() == res["frames"][0]["n_pred"] > 10  # background is a segment too
    assert (tmp_path / "out" / "overlays" / "01_t007.png").exists()


def test_labels_source_needs_gt(compose):
    cfg = compose("predict", ["task=segment", "task.split=predict", "data.splits.predict=[{seq: '02', frames: [0]}]"])
    # Frame 0 of the synthetic set has GT, so this works; a frame without GT is an error.
    assert run_task(cfg)["n_frames"] == 1
    from inpaintaff.segment.settings import segment_settings
    from inpaintaff.segment.sources import FrameData, build_affinities, frame_affinities

    spec = segment_settings(cfg.task).affinities
    assert spec.source == "labels"
    with pytest.raises(InputError, match="has no GT"):
        frame_affinities(build_affinities(spec), FrameData(SYNTH, "02", 0, (8, 8), labels=None))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("split,n_gt,margin", [("train", 59 + 109, 0.02), ("val", None, 0.1)])
def test_shared_hela_gt_affinities(compose, shared_root, capsys, split, n_gt, margin):
    """Done-when check on the real HeLa GT: train = fully labeled frames 013, 052; val = the 7
    sparsely labeled frames (only their labeled nuclei count)."""
    base = ["task=segment", "data=shared_hela", f"task.split={split}", "task.overlays=false"]
    clean = run_task(compose("predict", base))
    noisy = run_task(compose("predict", [*base, "task.affinities.noise=0.2", "task.alpha=0.7"]))
    cc = run_task(compose("predict", [*base, "task.method=cc"]))
    with capsys.disabled():
        print(f"\nHeLa {split} ({clean['n_frames']} frames, {clean['n_gt']} nuclei): SEG GT-aff {clean['seg']:.4f}, "
              f"noisy (sigma 0.2, alpha 0.7) {noisy['seg']:.4f}, CC on TRUEFG {cc['seg']:.4f}")
    if n_gt is not None:
        assert clean["n_gt"] == n_gt
    assert clean["seg"] > 0.98
    assert noisy["seg"] > cc["seg"] + margin


def test_min_size_merges_fragments(compose, tmp_path):
    """task.mws.min_size: fragments from noisy affinities join their neighbours and SEG rises."""
    base = ["task=segment", "task.split=val", "task.overlays=false", "task.affinities.noise=0.45", "task.alpha=0.5"]
    off = run_task(compose("predict", base))
    on = run_task(compose("predict", [*base, "task.mws.min_size=40"]))
    assert sum(r["n_pred"] for r in on["frames"]) < sum(r["n_pred"] for r in off["frames"])
    assert on["seg"] > off["seg"]


def _strict_json(path):
    """The file as JSON, refusing the non-standard NaN and Infinity."""
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path} holds {c}"))


def test_window_without_affinity_evidence_is_an_error(compose, tmp_path, synthetic_root):
    """Affinities seen in one window, scored in another: no evidence, so no score (not SEG nan)."""
    win = (slice(40, 140), slice(60, 200))
    part = tmp_path / "part"
    lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", 0))
    aff, valid = affinities_from_labels(fill_gaps(lab))
    inside = np.zeros_like(valid)
    inside[:, win[0], win[1]] = affinities_from_labels(lab[win])[1]
    write_affinities(aff_path(part, SYNTH, "02", 0), aff * inside, valid & inside, OFFSETS)
    base = ["task=segment", "task.split=predict", "task.overlays=false", "task.affinities.source=dir",
            f"task.affinities.dir={part}"]
    with pytest.raises(InputError, match=r"aff000\.tif: no valid affinity pair in the window \[150, 0, 100, 100\]"):
        run_task(compose("predict", [*base, "task.crop=[150,0,100,100]"]))
    assert not (tmp_path / "out" / RESULT_NAME).exists()


@pytest.mark.parametrize("crop", ["[0,64,40,40]", "[0,64,16,64]"])  # the second lower than the longest offset
def test_window_without_gt_objects_has_no_seg_and_valid_json(compose, tmp_path, crop):
    """A window of background only: SEG is undefined, written as null, never as NaN."""
    cfg = compose("predict", ["task=segment", "task.split=predict", "task.overlays=false", f"task.crop={crop}"])
    res = run_task(cfg)
    assert res["n_gt"] == 0 and res["seg"] is None
    saved = _strict_json(tmp_path / "out" / RESULT_NAME)
    assert saved["seg"] is None and saved["frames"][0]["seg"] is None


def test_affinities_outside_zero_one_are_an_error(compose, tmp_path, synthetic_root):
    lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", 0))
    aff, valid = affinities_from_labels(fill_gaps(lab))
    write_affinities(aff_path(tmp_path / "aff", SYNTH, "02", 0), 2 * aff - 0.5, valid, OFFSETS)  # logits-like
    cfg = compose("predict", ["task=segment", "task.split=predict", "task.overlays=false",
                              "task.affinities.source=dir", f"task.affinities.dir={tmp_path / 'aff'}"])
    with pytest.raises(InputError, match=r"aff000\.tif: affinities must lie in \[0, 1\].*-0\.5.*1\.5"):
        run_task(cfg)


def test_task_settings_are_typed(compose):
    """The segmentation tasks read a typed config: a key the task does not know, or a value of the
    wrong type, is an error naming it (Hydra's struct mode is off once a key is forced in with +)."""
    from inpaintaff.segment.settings import segment_settings

    cfg = compose("predict", ["task=segment_select"])
    task = segment_settings(cfg.task)
    assert task.select_split == "val" and task.mws.min_size == 0 and task.foreground.source == "truefg"
    with pytest.raises(ValueError, match="no_such_key"):
        run_task(compose("predict", ["task=segment", "+task.mws.no_such_key=1"]))
    with pytest.raises(ValueError, match="min_size"):
        segment_settings(compose("predict", ["task=segment", "task.mws.min_size=many"]).task)


def test_settings_check_their_own_values(compose):
    """Bad values fail where settings are made: from the config, and from dataclasses.replace (as
    α files fill in the fragment size), in the segmentation tasks and in Table 1."""
    from dataclasses import replace

    from inpaintaff.segment.settings import segment_settings
    from inpaintaff.tasks.table1 import table_settings

    task = segment_settings(compose("predict", ["task=segment_select"]).task)
    with pytest.raises(ValueError, match=r"task\.mws\.min_size must be >= 0"):
        replace(task, mws=replace(task.mws, min_size=-1))
    with pytest.raises(ValueError, match=r"task\.alpha must be a number or 'auto', got 'lots'"):
        segment_settings(compose("predict", ["task=segment", "task.alpha=lots"]).task)
    with pytest.raises(ValueError, match=r"task\.min_sizes must be >= 0"):
        segment_settings(compose("predict", ["task=segment_select", "task.min_sizes=[50,-1]"]).task)
    with pytest.raises(ValueError, match=r"task\.min_sizes must be >= 0"):
        table_settings(compose("predict", ["task=table1", "task.min_sizes=[-5]"]))
    assert replace(task, mws=replace(task.mws, min_size=30)).mws.min_size == 30


def test_intensity_foreground():
    from inpaintaff.segment.sources import FrameData, build_foreground, frame_foreground

    image = np.array([[0.1, 0.6], [0.9, 0.4]])
    fg = frame_foreground(build_foreground("intensity", threshold=0.5), FrameData("d", "01", 0, (2, 2), image=image))
    np.testing.assert_array_equal(fg, [[False, True], [True, False]])
