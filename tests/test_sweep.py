"""α sweeps: the collector, a real Hydra multirun (also with DDP trainer configs), task=segment_select."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inpaintaff.io.files import write_json
from inpaintaff.io.results import RESULT_NAME
from inpaintaff.segment.sweep import PLOT_NAME, TABLE_NAME, collect_sweep
from inpaintaff.tasks import run_task

PROJECT = Path(__file__).resolve().parents[1]


def _read_table(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_collect_sweep_from_job_folders(tmp_path):
    for job, (alpha, seg) in enumerate([(0.1, 0.5), (0.5, 0.9), (0.9, 0.7)]):
        write_json(tmp_path / str(job) / RESULT_NAME, {
            "label": "X + TRUEFG", "dataset": "D", "split": "val", "alpha": alpha, "seg": seg, "n_gt": 10,
            "n_frames": 1, "detection": {"thresholds": [0.5], "accuracy": [seg / 2]},
        })
    (tmp_path / "3").mkdir()  # a job that wrote nothing (failed) is simply absent
    rows = collect_sweep(tmp_path)
    assert [r["alpha"] for r in rows] == [0.1, 0.5, 0.9]
    table = _read_table(tmp_path / TABLE_NAME)
    assert [float(r["seg"]) for r in table] == [0.5, 0.9, 0.7]
    assert float(table[1]["det_acc_0.5"]) == 0.45
    assert (tmp_path / PLOT_NAME).stat().st_size > 1000
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert collect_sweep(tmp_path / "3") == []  # no results: no table, no error
    assert not (tmp_path / "3" / TABLE_NAME).exists()


@pytest.mark.slow
@pytest.mark.parametrize("trainer,alphas", [("ddp_spawn", [0.2, 0.5, 0.8]), ("ddp", [0.3, 0.9])])
def test_real_multirun_returns_every_job(tmp_path, trainer, alphas):
    """``predict.py -m`` with a DDP trainer config: every job's result lands in the sweep table."""
    cmd = [
        sys.executable, "predict.py", "-m", "task=segment", f"trainer={trainer}",
        f"task.alpha={','.join(map(str, alphas))}", f"paths.root_dir={tmp_path}",
        "task.overlays=false", "task.affinities.noise=0.2",
        "data.generate.n_frames=2", "data.generate.shape=[96,96]", "data.splits.test=[]",
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    proc = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = list((tmp_path / "runs" / "predict" / "multirun").glob(f"*/{TABLE_NAME}"))
    assert len(tables) == 1, proc.stderr[-3000:]
    rows = _read_table(tables[0])
    assert sorted(float(r["alpha"]) for r in rows) == alphas
    assert sorted(r["job"] for r in rows) == [str(i) for i in range(len(alphas))]
    assert all(0 < float(r["seg"]) <= 1 for r in rows)
    assert f"trainer={trainer}" in rows[0]["overrides"]
    assert (tables[0].parent / PLOT_NAME).exists()


def test_segment_select_chooses_alpha_on_val_and_applies_it_to_test(compose, tmp_path):
    cfg = compose("predict", [
        "task=segment_select", "task.alphas=[0.1,0.5,0.9]", "task.affinities.noise=0.2", "task.overlays=false",
    ])
    res = run_task(cfg)
    sel = res["alpha_selection"]
    assert [r["alpha"] for r in sel] == [0.1, 0.5, 0.9] and all(r["split"] == "val" for r in sel)
    best = max(sel, key=lambda r: r["seg"])
    assert res["alpha"] == best["alpha"] and res["alpha"] != 0.1
    assert res["split"] == "test" and res["selected_on"] == "val" and res["n_frames"] == 4
    assert res["alpha_at_grid_edge"] == (res["alpha"] == 0.9)
    out = tmp_path / "out"
    assert len(_read_table(out / "alpha_selection.csv")) == 3
    assert (out / "alpha_selection.png").exists() and (out / RESULT_NAME).exists()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_select_alpha_takes_frames_in_memory_and_returns_the_choice(compose, tmp_path):
    """The library's α choice: validation frames in (no data module), a small dict out, equal to what
    ``task=segment_select`` chose; frames without GT, or none, are errors naming the data set."""
    from dataclasses import replace

    from inpaintaff.segment.evaluation import load_inputs
    from inpaintaff.segment.selection import select_alpha
    from inpaintaff.segment.settings import segment_settings
    from inpaintaff.tasks.compose import load_data
    from inpaintaff.utils.errors import InputError

    cfg = compose("predict", ["task=segment_select", "task.alphas=[0.1,0.5,0.9]", "task.affinities.noise=0.2",
                              "task.overlays=false"])
    task, dm = segment_settings(cfg.task), load_data(cfg.data)
    frames = load_inputs(dm, "val", task, int(cfg.seed))
    where = tmp_path / "data"
    choice = select_alpha(frames, task, where)
    assert set(choice) == {"alpha", "min_size", "rows"}
    assert [r["alpha"] for r in choice["rows"]] == [0.1, 0.5, 0.9] and choice["rows"][0]["dataset"] == "data"
    assert choice["alpha"] == max(choice["rows"], key=lambda r: r["seg"])["alpha"]
    assert choice["alpha"] == run_task(cfg)["alpha"]
    with pytest.raises(InputError, match=r"data: every frame of split 'val' needs GT"):
        select_alpha([replace(frames[0], labels=None), *frames[1:]], task, where)
    with pytest.raises(InputError, match="holds no frames"):
        select_alpha([], task, where)
