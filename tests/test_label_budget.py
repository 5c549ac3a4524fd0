"""task=label_budget: a real Hydra multirun over budgets and seeds on the synthetic data, every job's
result in the sweep table, resume, and the report's pieces."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from inpaintaff.tasks.label_budget import RESULT_NAME, budget_data, train_config
from inpaintaff.tasks.label_budget_report import find_jobs, nearest_budget, summarize

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ('["model={net}_cpu","trainer=cpu","data.train_mode=labeled","trainer.max_steps=2","data.batch_size=2",'
         '"data.crop_size=64","data.samples_per_epoch=4","data.splits.val=[]","trainer.limit_val_batches=0",'
         '"logger=csv","trainer.enable_progress_bar=false"]')


def _sweep(tmp_path: Path, data_dir: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "predict.py", "-m", "task=label_budget", "task.budget=3,all", "seed=1,2",
           f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
           "hydra.sweep.subdir=b${task.budget}_s${seed}",
           f"task.train.fgnet={TRAIN.format(net='fgnet')}", f"task.train.affnet={TRAIN.format(net='affnet')}",
           "task.inpainters.net.inpainter=gaussian", "task.inpainters.net.ckpt=null",
           "task.inpaintaff.crop=[100,60,48,80]", "+task.inpaintaff.patch_size=32", "+task.inpaintaff.batch_size=8",
           "task.alphas=[0.5,2.0]", "task.min_sizes=[0]", "trainer.enable_progress_bar=false"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_label_budget_multirun_gathers_every_job_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    proc = _sweep(tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    with open(sweep / "label_budget.csv") as f:
        rows = list(csv.DictReader(f))
    methods = {"INPAINTAFF + FGNET", "DISTILL + FGNET", "AFFNET + FGNET", "AFFNET + TRUEFG", "CC on FGNET"}
    assert {r["job"] for r in rows} == {"b3_s1", "b3_s2", "ball_s1", "ball_s2"}
    assert all(r["status"] == "done" for r in rows) and len(rows) == 4 * len(methods)
    assert {r["method"] for r in rows} == methods
    for r in rows:
        assert 0.0 <= float(r["seg_test"]) <= 1.0
        if r["method"] != "CC on FGNET":
            assert float(r["alpha"]) in (0.5, 2.0)
    n = {r["job"]: int(r["n_labeled"]) for r in rows}
    assert 1 <= n["b3_s1"] <= 3 and 1 <= n["b3_s2"] <= 3
    assert n["ball_s1"] == n["ball_s2"] > 3  # every labeled frame, uncropped
    # Each job's nets trained on its own seed: different weights for the same budget.
    results = {j: json.loads((sweep / j / RESULT_NAME).read_text()) for j in n}
    assert results["ball_s1"]["train"]["fgnet"]["checkpoint"] != results["ball_s2"]["train"]["fgnet"]["checkpoint"]
    assert all(r["train"]["fgnet"]["global_step"] == 2 for r in results.values())
    # The InpaintAff affinities were computed once, in the shared folder, for every job.
    dirs = {r["affinity_dirs"]["net"] for r in results.values()}
    assert len(dirs) == 1 and Path(dirs.pop()).parent == tmp_path / "runs" / "predict" / "shared"
    for name in ("seg_vs_labels.png", "detection_over_iou.png", "label_budget.md", "label_budget.json"):
        assert (sweep / name).stat().st_size > 0, name
    assert list((sweep / "tensorboard").glob("events.*"))
    report = json.loads((sweep / "label_budget.json").read_text())
    assert report["n_jobs"] == 4 and not report["missing"]
    # Rerun: every job is finished, nothing is trained again.
    ckpt = Path(results["b3_s1"]["train"]["affnet"]["checkpoint"])
    before = ckpt.stat().st_mtime_ns
    again = _sweep(tmp_path, data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert ckpt.stat().st_mtime_ns == before
    assert again.stderr.count("finished earlier") + again.stdout.count("finished earlier") >= 4


def test_budget_data() -> None:
    assert budget_data("all", 1) == {"label_frames": None, "max_instances": None}
    assert budget_data(12, 1) == {"label_frames": 1, "max_instances": 12}
    for bad in (0, "many"):
        with pytest.raises(ValueError, match="task.budget"):
            budget_data(bad, 1)


def test_training_reads_the_jobs_data_source(compose, tmp_path: Path) -> None:
    cfg = compose("predict", ["task=label_budget", "data.root=/some/ctc", "data.dataset=Fluo-N2DL-HeLa"])
    tcfg = train_config(cfg, ["experiment=hela_fgnet_cpu"], tmp_path / "net")
    assert tcfg.data.root == "/some/ctc" and tcfg.data.dataset == "Fluo-N2DL-HeLa"
    assert tcfg.data.train_mode == "labeled"  # the preset's training keys stay
    assert tcfg.paths.output_dir == str(tmp_path / "net")
    with pytest.raises(ValueError, match="ddp_spawn"):
        train_config(cfg, ["experiment=hela_fgnet_cpu", "trainer=ddp"], tmp_path / "net")


def test_report_marks_jobs_without_result_and_picks_budget_nearest(tmp_path: Path) -> None:
    def job(name: str, budget: str, seed: int, n: int, seg: float) -> None:
        d = tmp_path / name
        (d / ".hydra").mkdir(parents=True)
        rows = [{"label": "A", "method": "mws", "seg_val": seg, "seg_test": seg}]
        (d / RESULT_NAME).write_text(json.dumps({"budget": budget, "seed": seed, "n_labeled": n, "rows": rows,
                                                 "splits": ["val", "test"], "job_dir": str(d)}))

    job("b10_s1", "10", 1, 8, 0.5)
    job("b10_s2", "10", 2, 10, 0.7)
    job("b60_s1", "60", 1, 59, 0.8)
    (tmp_path / "b60_s2" / ".hydra").mkdir(parents=True)  # failed before writing its result
    results, missing = find_jobs(tmp_path)
    assert len(results) == 3 and missing == [tmp_path / "b60_s2"]
    summary = summarize(results, "test")
    b10 = next(s for s in summary if s["budget"] == "10")
    assert b10["n_labeled"] == 9 and b10["seg"] == pytest.approx(0.6) and b10["seg_std"] == pytest.approx(0.1)
    assert nearest_budget(summary, 50) == "60" and nearest_budget(summary, 12) == "10"


def _stub_job(monkeypatch, tmp_path: Path) -> list[str]:
    """Replace a job's heavy stages (training, the engine, Table 1) by stubs; returns the log of calls."""
    from inpaintaff.tasks import label_budget

    calls: list[str] = []
    ckpts = {net: tmp_path / f"{net}.ckpt" for net in label_budget.NETS}
    for path in ckpts.values():
        path.write_bytes(b"weights")

    def train_net(cfg, overrides, out):
        calls.append(f"train {out.name}")
        return {"checkpoint": str(ckpts[out.name]), "n_train_instances": 3, "global_step": 2, "metrics": {}}

    def table(cfg, job, dm):
        calls.append("table1")
        return {"rows": []}

    monkeypatch.setattr(label_budget, "train_net", train_net)
    monkeypatch.setattr(label_budget, "shared_affinities", lambda cfg, t, frames: {})
    monkeypatch.setattr(label_budget.table1, "run", table)
    return calls


def test_finished_job_is_reused_only_when_its_record_matches(compose, monkeypatch, tmp_path: Path,
                                                             synthetic_root: Path) -> None:
    """Another crop of the engine, another normalisation, another input file or a replaced checkpoint
    make a finished job run again; the same record returns the finished result."""
    import shutil

    from inpaintaff.tasks.label_budget import run

    calls = _stub_job(monkeypatch, tmp_path)
    base = ["task=label_budget", "task.budget=3", "task.inpainters.net.inpainter=gaussian",
            "task.inpainters.net.ckpt=null", "task.inpaintaff.crop=[100,60,48,80]"]

    def job(*extra: str) -> dict:
        calls.clear()
        return run(compose("predict", [*base, *extra]))

    first = job()
    assert calls == ["train fgnet", "train affnet", "table1"]
    assert job() == first and calls == []  # finished: reused
    for change in ("task.inpaintaff.crop=[100,60,48,64]", "data.normalize.high=99.0"):
        job(change)
        assert "table1" in calls, change
        job()  # back to the first settings (rerun, then finished again)
    assert job() is not None and calls == []
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root / "SYNTH-HeLa", copy / "SYNTH-HeLa")
    job(f"data.root={copy}")
    assert calls == []  # the same bytes elsewhere: reused (paths do not count)
    raw = copy / "SYNTH-HeLa" / "02" / "t002.tif"  # a test frame
    import tifffile

    tifffile.imwrite(raw, tifffile.imread(raw)[::-1].copy())
    job(f"data.root={copy}")
    assert "table1" in calls
    job()
    (tmp_path / "affnet.ckpt").write_bytes(b"trained on")  # the job's net replaced under the same path
    job()
    assert "table1" in calls
