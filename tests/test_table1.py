"""task=table1 end to end on the synthetic data: stages, α chosen on val, resume, α stored with the affinities."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict

from inpaintaff.io.affinities import aff_path
from inpaintaff.segment.alpha import ALPHA_FILE, read_alpha
from inpaintaff.tasks import run_task

ROWS = [
    {"label": "CC on TRUEFG", "method": "cc", "foreground": "truefg"},
    {"label": "ANALYTIC-AFF + TRUEFG", "affinities": "analytic", "foreground": "truefg"},
]
CROP = [100, 60, 48, 80]
CROP_ARG = f"task.crop=[{','.join(map(str, CROP))}]"


def _table_cfg(compose, **task):
    cfg = compose("predict", ["task=table1", "task.alphas=[0.1,0.5,1.5,5.0]", "task.min_sizes=[0,20]",
                             "task.overlays=false"])
    with open_dict(cfg):
        cfg.task.rows = ROWS
        cfg.task.inpainters = {"analytic": {"inpainter": "gaussian", "gaussian_sigma": 3.0}}
        cfg.task.inpaintaff = {"patch_size": 32, "stride": 16, "crop": CROP, "foreground": {"source": "truefg"},
                               "pictures": False, "batch_size": 8}
        for k, v in task.items():
            cfg.task[k] = v
    return cfg


@pytest.mark.slow
def test_table1_chooses_alpha_on_val_scores_test_and_resumes(compose, caplog) -> None:
    figure = {"split": "test", "seq": "02", "frame": 2, "crop": CROP, "rows": [r["label"] for r in ROWS]}
    cfg = _table_cfg(compose, min_merged=10_000, figure=figure)
    with caplog.at_level(logging.WARNING):
        report = run_task(cfg)
    assert "too few merges" in caplog.text
    work = Path(cfg.paths.output_dir)
    cc, analytic = report["rows"]
    assert cc["method"] == "cc" and analytic["method"] == "mws"
    assert analytic["alpha"] in (0.1, 0.5, 1.5, 5.0) and analytic["min_size"] in (0, 20)
    # α and min_size are the best of the validation grid, never of the test curve.
    assert len(analytic["grid"]) == 8
    val_best = max(analytic["grid"], key=lambda r: r["seg"])
    assert (analytic["alpha"], analytic["min_size"]) == (val_best["alpha"], val_best["min_size"])
    assert analytic["seg_val"] == val_best["seg"]
    test = analytic["splits"]["test"]
    at_alpha = [p["seg"] for p in test["curve"] if p["alpha"] == analytic["alpha"]]
    assert at_alpha == [test["seg"]] and 0.0 < test["seg"] <= 1.0
    # Cross-check the row against a plain task=segment run on the same affinities and α.
    aff_dir = report["affinities"]["analytic"]["dir"]
    seg = compose("predict", ["task=segment", "task.split=test", "task.affinities.source=dir",
                              f"task.affinities.dir={aff_dir}", "task.alpha=auto", CROP_ARG, "task.overlays=false"])
    with open_dict(seg):
        seg.paths.output_dir = str(work / "check")
    assert run_task(seg)["seg"] == test["seg"]  # alpha=auto read the stored α
    assert read_alpha(aff_dir, "truefg")[0] == analytic["alpha"]
    cc_seg = compose("predict", ["task=segment", "task.split=test", "task.method=cc", "task.overlays=false", CROP_ARG])
    with open_dict(cc_seg):
        cc_seg.paths.output_dir = str(work / "check_cc")
    assert run_task(cc_seg)["seg"] == cc["splits"]["test"]["seg"]
    # Outputs: table, curves, per-row results, α beside the affinities.
    assert "| ANALYTIC-AFF + TRUEFG |" in (work / "table1.md").read_text()
    assert (work / "seg_vs_alpha.png").stat().st_size > 5000
    assert (work / "comparison.png").stat().st_size > 5000
    saved = json.loads((Path(aff_dir) / ALPHA_FILE).read_text())
    assert saved["truefg"]["chosen_on"] == "val" and len(saved["truefg"]["curve"]) == 4
    assert (work / "rows" / "analytic_aff_truefg" / "test" / "segment_result.json").is_file()
    # Rerun: the affinities are kept, the table is the same.
    aff_file = aff_path(aff_dir, "SYNTH-HeLa", "02", 0)
    mtime = aff_file.stat().st_mtime_ns
    again = run_task(_table_cfg(compose, min_merged=0, figure=figure))
    assert aff_file.stat().st_mtime_ns == mtime
    assert again["markdown"] == report["markdown"]


def test_table1_rejects_rows_without_affinities(compose) -> None:
    cfg = _table_cfg(compose)
    with open_dict(cfg):
        cfg.task.rows = [{"label": "X + TRUEFG", "affinities": "nothing", "foreground": "truefg"}]
    with pytest.raises(ValueError, match="nothing"):
        run_task(cfg)
    with open_dict(cfg):
        cfg.task.rows = [*ROWS, {"label": "X + FGNET", "affinities": "analytic", "foreground": "fgnet"}]
        cfg.task.fgnet_ckpt = None
    with pytest.raises(ValueError, match=r"set task\.fgnet_ckpt"):
        run_task(cfg)


def test_checkpoint_alpha_travels_to_new_affinities(tmp_path) -> None:
    from inpaintaff.segment.alpha import checkpoint_alpha_file, record_alpha_selection, seed_from_checkpoint
    from inpaintaff.utils.errors import InputError

    ckpt = tmp_path / "net.ckpt"
    ckpt.write_bytes(b"")
    aff = tmp_path / "aff"
    with pytest.raises(InputError, match="no stored alpha"):
        read_alpha(aff, "truefg")
    assert seed_from_checkpoint(ckpt, aff) is None  # the checkpoint has no measured α
    measured = record_alpha_selection(tmp_path / "table", "X + TRUEFG", "truefg", 1.5,
                                      [{"alpha": 1.5, "seg": 0.8}], "val", 20)
    checkpoint_alpha_file(ckpt).write_text(measured.read_text())
    assert seed_from_checkpoint(ckpt, aff) == aff / ALPHA_FILE
    value, entry = read_alpha(aff, "truefg")
    assert value == 1.5 and entry["from_checkpoint"] == "net.ckpt"
    with pytest.raises(InputError, match="fgnet"):
        read_alpha(aff, "dir")
    record_alpha_selection(aff, "X + TRUEFG", "truefg", 0.7, [], "val")  # measured here: wins
    assert seed_from_checkpoint(ckpt, aff) is None and read_alpha(aff, "truefg")[0] == 0.7


def test_count_merged_objects_counts_gt_objects_sharing_a_component() -> None:
    from types import SimpleNamespace

    from inpaintaff.segment.alpha import count_merged_objects

    labels = np.zeros((20, 30), np.uint16)
    labels[2:8, 2:8], labels[2:8, 8:14] = 1, 2  # touching: one component, two objects
    labels[12:18, 20:26] = 3  # alone
    labels[12:18, 2:6], labels[12:18, 7:11] = 4, 5  # a one-pixel gap: closed by TRUEFG, so merged
    ref = SimpleNamespace(gt_path="x")
    dm = SimpleNamespace(frames=lambda split: [ref, SimpleNamespace(gt_path=None)], load_labels=lambda r: labels)
    assert count_merged_objects(dm, "val") == 4


@pytest.mark.slow
def test_fgnet_rows_choose_their_threshold_on_val(compose) -> None:
    """FGNET's threshold is chosen with α and the fragment size on val (the best of the whole grid),
    used on test and stored with α beside the affinities; CC on FGNET chooses it too."""
    rows = [{"label": "CC on FGNET", "method": "cc", "foreground": "fgnet"},
            {"label": "ANALYTIC-AFF + FGNET", "affinities": "analytic", "foreground": "fgnet"}]
    cfg = _table_cfg(compose, min_merged=0, rows=rows, fg_thresholds=[0.2, 0.8])
    with open_dict(cfg):
        cfg.task.inpaintaff.foreground = {"source": ["truefg", "dir"]}
    report = run_task(cfg)
    cc, mws = report["rows"]
    assert {r["threshold"] for r in mws["grid"]} == {0.2, 0.8} and len(mws["grid"]) == 16
    best = max(mws["grid"], key=lambda r: r["seg"])
    assert (mws["threshold"], mws["alpha"], mws["min_size"]) == (best["threshold"], best["alpha"], best["min_size"])
    by_threshold = {t: max(r["seg"] for r in mws["grid"] if r["threshold"] == t) for t in (0.2, 0.8)}
    assert by_threshold[0.2] != by_threshold[0.8]  # the threshold changes the foreground
    assert cc["threshold"] in (0.2, 0.8)
    stored = json.loads((Path(report["affinities"]["analytic"]["dir"]) / ALPHA_FILE).read_text())["fgnet"]
    assert stored["threshold"] == mws["threshold"] and stored["alpha"] == mws["alpha"]
    segmented = json.loads((Path(mws["splits"]["test"]["output_dir"]) / "segment_result.json").read_text())
    assert segmented["seg"] == mws["splits"]["test"]["seg"]
    # task=segment task.alpha=auto reads the threshold with α and the fragment size.
    aff_dir, work = report["affinities"]["analytic"]["dir"], Path(cfg.paths.output_dir)
    seg = compose("predict", ["task=segment", "task.split=test", "task.affinities.source=dir",
                              f"task.affinities.dir={aff_dir}", "task.alpha=auto", CROP_ARG, "task.overlays=false",
                              "task.foreground.source=dir", f"task.foreground.dir={work / 'fgnet'}",
                              "task.foreground.threshold=0.5"])
    with open_dict(seg):
        seg.paths.output_dir = str(work / "check_auto")
    assert run_task(seg)["seg"] == mws["splits"]["test"]["seg"]


def test_every_shipped_alpha_file_is_valid_and_names_a_shipped_checkpoint() -> None:
    """The α files beside the shipped checkpoints are what task.alpha=auto reads on a user's frames."""
    from inpaintaff.segment.alpha import check_alpha_entry, load_alpha_file

    shipped = Path(__file__).resolve().parents[1] / "inpaintaff" / "checkpoints"
    files = sorted(shipped.glob("*.alpha.json"))
    assert len(files) >= 5
    for path in files:
        assert (shipped / path.name.replace(".alpha.json", ".ckpt")).is_file(), path
        data = load_alpha_file(path)
        assert "truefg" in data or "fgnet" in data, path
        for key, entry in data.items():
            check_alpha_entry(path, key, entry)
            assert entry["alpha"] in [c["alpha"] for c in entry["curve"]], (path, key)  # chosen from its own curve
