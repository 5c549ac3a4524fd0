"""task=report: Table 1 layout and the detection-over-IoU plot from finished runs."""

from __future__ import annotations

import json

from inpaintaff.io.files import write_json
from inpaintaff.io.results import RESULT_NAME
from inpaintaff.tasks import run_task
from inpaintaff.tasks.report import MISSING, build_table, markdown_table, pick_results


def _result(label, dataset, seg, split="test", when="2026-01-01T00:00:00", **kw):
    det = {"thresholds": [0.1, 0.5, 0.9], "accuracy": [seg, seg * 0.9, seg * 0.5]}
    return {"label": label, "dataset": dataset, "split": split, "seg": seg, "alpha": 0.5, "finished_at": when,
            "detection": det, "method": "cc" if label.startswith("CC") else "mws", **kw}


def test_pick_prefers_alpha_chosen_elsewhere_then_newest():
    rs = [
        _result("A", "D", 0.6, when="2026-01-02", selected_on="val"),
        _result("A", "D", 0.9, when="2026-01-03"),  # newer but α picked on test itself
        _result("B", "D", 0.3, when="2026-01-01"),
        _result("B", "D", 0.4, when="2026-01-05"),
        _result("B", "D", 0.99, split="val"),  # other split: ignored
    ]
    for i, r in enumerate(rs):
        r["_path"] = f"r{i}"
    picked = pick_results(rs, "test")
    assert picked[("A", "D")]["seg"] == 0.6
    assert picked[("B", "D")]["seg"] == 0.4


def test_table_layout_with_missing_cells():
    picked = {("CC on TRUEFG", "Fluo-N2DL-HeLa"): {"seg": 0.7851}, ("Z", "Other"): {"seg": 0.5}}
    rows, cols, cells = build_table(picked, datasets={"Fluo-N2DL-HeLa": "HELA", "PhC-C2DL-PSC": "PANC"})
    assert cols == ["HELA", "PANC", "Other"]
    assert rows[:4] == ["CC on TRUEFG", "INPAINTAFF + TRUEFG", "INPAINTAFF + FGNET", "AFFNET + FGNET"]
    assert rows[4] == "Z"
    assert cells[0] == ["0.785", MISSING, MISSING] and cells[1] == [MISSING] * 3
    assert cells[4] == [MISSING, MISSING, "0.500"]
    md = markdown_table(rows, cols, cells)
    assert md.splitlines()[0] == "| Method | HELA | PANC | Other |"
    assert "| CC on TRUEFG | 0.785 | — | — |" in md
    rows2, _, _ = build_table(picked, extra_rows=False)
    assert "Z" not in rows2


def test_report_task_from_run_folders(compose, tmp_path):
    runs = tmp_path / "finished"
    entries = [
        ("CC on TRUEFG", "Fluo-N2DL-HeLa", 0.785), ("INPAINTAFF + TRUEFG", "Fluo-N2DL-HeLa", 0.858),
        ("INPAINTAFF + TRUEFG", "PhC-C2DL-PSC", 0.914), ("AFFNET + FGNET", "PhC-C2DL-PSC", 0.6),
    ]
    for i, (label, ds, seg) in enumerate(entries):
        write_json(runs / f"run{i}" / RESULT_NAME, _result(label, ds, seg))
    (runs / "broken").mkdir()
    (runs / "broken" / RESULT_NAME).write_text("{not json")
    res = run_task(compose("predict", ["task=report", f"task.runs=[{runs}]"]))
    out = tmp_path / "out"
    md = (out / "table1.md").read_text()
    assert "| INPAINTAFF + TRUEFG | 0.858 | 0.914 |" in md
    assert "| INPAINTAFF + FGNET | — | — |" in md
    assert "| AFFNET + FGNET | — | 0.600 |" in md
    csv_text = (out / "table1.csv").read_text().splitlines()
    assert csv_text[0] == "method,HELA,PANC" and csv_text[1] == "CC on TRUEFG,0.785,—"
    assert (out / "detection.png").stat().st_size > 5000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    saved = json.loads((out / "report.json").read_text())
    assert saved["sources"]["CC on TRUEFG | Fluo-N2DL-HeLa"]["run"].endswith(f"run0/{RESULT_NAME}")
    assert res["n_results_found"] == 4


def test_report_reads_real_segment_runs(compose, tmp_path):
    """A CC run and a GT-affinity run on the synthetic test split show up in the table."""
    for name, extra in (("cc", ["task.method=cc"]), ("mws", [])):
        cfg = compose("predict", ["task=segment", "task.split=test", "task.overlays=false", *extra])
        cfg.paths.output_dir = str(tmp_path / "runs" / name)
        run_task(cfg)
    res = run_task(compose("predict", ["task=report", f"task.runs=[{tmp_path / 'runs'}]"]))
    assert res["columns"][-1] == "SYNTH-HeLa"
    by_row = dict(zip(res["rows"], res["cells"]))
    assert by_row["CC on TRUEFG"][-1] != MISSING and by_row["GT-AFF + TRUEFG"][-1] != MISSING
    assert float(by_row["GT-AFF + TRUEFG"][-1]) > float(by_row["CC on TRUEFG"][-1])
