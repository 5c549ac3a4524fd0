"""Reliability, round two: output folders checked before the work, empty work and bad values refused
up front, misreports corrected, and messages (naming the file or the key) instead of tracebacks."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from inpaintaff.io import ctc
from inpaintaff.tasks import run_task
from inpaintaff.train import train
from inpaintaff.utils.errors import InputError

PACKAGE = Path(__file__).resolve().parents[1] / "inpaintaff"
SHIPPED = PACKAGE / "checkpoints"
QUICK = [
    "task=inpaintaff", "task.inpainter=gaussian", "task.crop=[100,60,48,80]", "task.patch_size=32",
    "task.stride=16", "task.batch_size=4", "task.engine.iterations=6", "task.engine.d0=4",
    "task.engine.min_region=30", "task.engine.max_depth=3", "trainer=cpu", "trainer.enable_progress_bar=false",
]
TINY_TRAIN = [
    "model=inpaint_cpu", "model.widths=[4,8]", "model.kernel_sizes=[3,3]", "model.warmup_steps=2",
    "model.image_log_every_n_steps=0", "trainer=cpu", "trainer.max_epochs=-1", "trainer.max_steps=2",
    "trainer.limit_val_batches=0", "trainer.enable_progress_bar=false", "logger=csv",
    "data.crop_size=32", "data.batch_size=2", "data.samples_per_epoch=4",
]


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the settings and output folders were checked")


@pytest.fixture
def no_work(monkeypatch):
    """Building data, nets or trainers (all through hydra.utils.instantiate) fails the test."""
    import hydra

    monkeypatch.setattr(hydra.utils, "instantiate", _no_work)


def _read_only(monkeypatch, folder: Path) -> None:
    """``folder`` behaves as read-only (tests run as root, who may write anywhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    real = tempfile.TemporaryFile

    def fake(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", fake)


# -- 6: every folder a task writes into is checked before the work -----------------------------------

def test_segment_select_checks_the_affinity_folder_first(compose, tmp_path, monkeypatch, no_work):
    aff = tmp_path / "aff"
    _read_only(monkeypatch, aff)
    cfg = compose("predict", ["task=segment_select", "task.affinities.source=dir", f"task.affinities.dir={aff}"])
    with pytest.raises(InputError, match=rf"{re.escape(str(aff))}: .*cannot write"):
        run_task(cfg)


def test_training_checks_the_checkpoint_folder_first(compose, tmp_path, monkeypatch, no_work):
    ckpts = tmp_path / "ckpts"
    _read_only(monkeypatch, ckpts)
    cfg = compose("train", [f"callbacks.model_checkpoint.dirpath={ckpts}"])
    with pytest.raises(InputError, match=rf"{re.escape(str(ckpts))}: .*cannot write"):
        train(cfg)


def test_label_budget_checks_the_shared_folder_first(compose, tmp_path, monkeypatch, no_work):
    shared = tmp_path / "shared"
    _read_only(monkeypatch, shared)
    cfg = compose("predict", ["experiment=hela_label_budget", f"task.shared_dir={shared}"])
    with pytest.raises(InputError, match=rf"{re.escape(str(shared))}: .*cannot write"):
        run_task(cfg)


# -- 7: no patch reaches the foreground setting: an error at planning ----------------------------------

@pytest.mark.parametrize("fg,setting", [
    ("{source: intensity, threshold: 2.0}", "task.foreground.threshold"),
    ("{source: truefg, min_pixels: 100000}", "task.foreground.min_pixels"),
])
def test_foreground_that_no_patch_reaches_is_an_error(compose, fg, setting):
    from inpaintaff.tasks.inpaintaff import run

    cfg = compose("predict", [*QUICK, f"task.foreground={fg}", "data.splits.predict=[{seq: '02', frames: [0]}]"])
    with pytest.raises(InputError, match=rf"t000.*: .*02/t000.*{re.escape(setting)}"):
        run(cfg)
    assert not list(Path(cfg.task.out_dir).rglob("*.tif")), "an affinity file was written"


# -- 8: misreports ---------------------------------------------------------------------------------------

def test_merged_objects_are_counted_within_the_crop():
    from inpaintaff.segment.alpha import count_merged_objects

    labels = np.zeros((20, 30), np.uint16)
    labels[2:8, 2:8], labels[2:8, 8:14] = 1, 2  # touching, in the top half
    labels[12:18, 2:6], labels[12:18, 6:10] = 4, 5  # touching, in the bottom half
    ref = SimpleNamespace(gt_path="x")
    dm = SimpleNamespace(frames=lambda split: [ref], load_labels=lambda r: labels)
    assert count_merged_objects(dm, "val") == 4
    assert count_merged_objects(dm, "val", crop=[10, 0, 10, 30]) == 2
    assert count_merged_objects(dm, "val", crop=[0, 20, 20, 10]) == 0


def test_table1_counts_merges_within_its_crop(monkeypatch):
    from inpaintaff.tasks import table1

    seen = {}

    def fake(dm, split, crop=None):
        seen["crop"] = crop
        raise RuntimeError("stop")

    monkeypatch.setattr(table1, "count_merged_objects", fake)
    monkeypatch.setattr(table1, "affinity_stages", lambda *a, **k: {})
    monkeypatch.setattr(table1, "predict_spec", lambda *a, **k: [])
    t = SimpleNamespace(select_split="val", eval_splits=["test"], inpaintaff={"crop": [1, 2, 30, 40]})
    monkeypatch.setattr(table1, "check_checkpoints", lambda t: None)
    cfg = SimpleNamespace(paths=SimpleNamespace(output_dir="."))
    with pytest.raises(RuntimeError, match="stop"):
        table1.run(cfg, t, dm=object())
    assert seen["crop"] == [1, 2, 30, 40]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_without_results_is_an_error(compose, tmp_path, make):
    runs = tmp_path / "runs"
    if make == "empty":
        runs.mkdir()
    cfg = compose("predict", ["task=report", f"task.runs={runs}"])
    with pytest.raises(InputError, match=rf"{re.escape(str(runs))}: .*(not found|no segment_result.json)"):
        run_task(cfg)


# -- 9: bad values refused before the work ---------------------------------------------------------------

def test_negative_min_size_is_refused(compose, no_work):
    with pytest.raises(ValueError, match=r"task\.mws\.min_size"):
        run_task(compose("predict", ["task=segment", "task.mws.min_size=-1"]))
    with pytest.raises(ValueError, match=r"task\.min_sizes"):
        run_task(compose("predict", ["task=segment_select", "task.min_sizes=[0,-5]"]))
    with pytest.raises(ValueError, match=r"task\.min_sizes"):
        run_task(compose("predict", ["task=table1", "task.min_sizes=[-1,0]"]))


def test_negative_min_size_in_a_table_row_is_refused(compose, no_work):
    cfg = compose("predict", ["task=table1"])
    with open_dict(cfg):
        cfg.task.rows[1]["min_sizes"] = [-3]
    with pytest.raises(ValueError, match=r"task\.rows.*min_sizes"):
        run_task(cfg)


@pytest.mark.parametrize("model,size,minimum", [("inpaint_cpu", 1, 8), ("affnet_cpu", 16, 32), ("fgnet_cpu", 8, 32)])
def test_crop_size_below_what_the_net_takes(compose, model, size, minimum):
    cfg = compose("train", [f"model={model}", f"data.crop_size={size}", "trainer=cpu", "trainer.max_steps=1",
                            "data.train_mode=labeled" if model != "inpaint_cpu" else "data.train_mode=raw"])
    with pytest.raises(ValueError, match=rf"data\.crop_size.*{minimum}"):
        train(cfg)


@pytest.mark.parametrize("override,key", [
    ("trainer.max_steps=0", "trainer.max_steps"), ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("trainer.max_steps=-2", "trainer.max_steps"),
])
def test_training_that_would_not_train_is_refused(compose, no_work, override, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        train(compose("train", [override]))


@pytest.mark.parametrize("override,key", [
    ("task.save_every_n_batches=-1", "task.save_every_n_batches"), ("task.torch_threads=-1", "task.torch_threads"),
    ("task.torch_threads=many", "task.torch_threads"), ("task.torch_threads=true", "task.torch_threads"),
])
def test_inpaintaff_bad_values(compose, no_work, override, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        run_task(compose("predict", [*QUICK, override]))


def test_segment_folder_negative_threads(compose, tmp_path, no_work):
    cfg = compose("predict", ["task=segment_folder", "data=folder", f"data.images={tmp_path}", "task.torch_threads=-1"])
    with pytest.raises(ValueError, match=r"task\.torch_threads"):
        run_task(cfg)


@pytest.mark.parametrize("task,ckpt", [("foreground", "hela_fgnet_cpu.ckpt"), ("affnet", "hela_affnet_cpu.ckpt")])
@pytest.mark.parametrize("override,key", [("task.tile=0", "task.tile"), ("task.halo=-1", "task.halo")])
def test_tiled_prediction_bad_values(compose, no_work, task, ckpt, override, key):
    cfg = compose("predict", [f"task={task}", f"ckpt={SHIPPED / ckpt}", override])
    with pytest.raises(ValueError, match=re.escape(key)):
        run_task(cfg)


def test_labeled_training_without_instances_is_an_error(tmp_path, synthetic_root):
    from inpaintaff.data.datamodule import CTCDataModule

    raw = ctc.read_image(ctc.raw_path(synthetic_root, "SYNTH-HeLa", "01", 0))
    ctc.write_image(tmp_path / "EMPTY" / "01" / "t000.tif", raw)
    ctc.write_labels(tmp_path / "EMPTY" / "01_GT" / "SEG" / "man_seg000.tif", np.zeros(raw.shape, np.int64))
    dm = CTCDataModule(tmp_path, "EMPTY", {"train": [{"seq": "01", "frames": [0]}]}, train_mode="labeled",
                       crop_size=32)
    with pytest.raises(InputError, match=r"EMPTY.*no labeled instance"):
        dm.setup("fit")


# -- 10: messages instead of tracebacks ---------------------------------------------------------------------

def test_alpha_file_without_min_size_or_corrupt(tmp_path):
    from inpaintaff.api import stored_alpha
    from inpaintaff.segment.alpha import ALPHA_FILE, read_alpha, record_alpha_selection

    ckpt = tmp_path / "m.ckpt"
    file = tmp_path / "m.alpha.json"
    file.write_text(json.dumps({"fgnet": {"alpha": 0.5, "label": "x", "chosen_on": "val"}}))
    with pytest.raises(InputError, match=rf"{re.escape(str(file))}: .*min_size"):
        stored_alpha(ckpt, "fgnet")
    file.write_text(json.dumps({"fgnet": {"alpha": "much", "min_size": 0}}))
    with pytest.raises(InputError, match=rf"{re.escape(str(file))}: .*alpha"):
        stored_alpha(ckpt, "fgnet")
    file.write_text('{"fgnet": {"alpha": 0.5,')
    with pytest.raises(InputError, match=rf"{re.escape(str(file))}: .*JSON"):
        stored_alpha(ckpt, "fgnet")
    folder = tmp_path / "aff"
    folder.mkdir()
    (folder / ALPHA_FILE).write_text("not json")
    with pytest.raises(InputError, match=rf"{re.escape(str(folder / ALPHA_FILE))}: .*JSON"):
        read_alpha(folder, "truefg")
    with pytest.raises(InputError, match=rf"{re.escape(str(folder / ALPHA_FILE))}: .*JSON"):
        record_alpha_selection(folder, "x", "truefg", 0.5, [], "val")


def test_alpha_auto_with_an_entry_without_min_size(compose, tmp_path, no_work):
    from inpaintaff.segment.alpha import ALPHA_FILE

    aff = tmp_path / "aff"
    aff.mkdir()
    (aff / ALPHA_FILE).write_text(json.dumps({"truefg": {"alpha": 0.5, "label": "x", "chosen_on": "val"}}))
    cfg = compose("predict", ["task=segment", "task.alpha=auto", "task.affinities.source=dir",
                              f"task.affinities.dir={aff}"])
    with pytest.raises(InputError, match=rf"{re.escape(str(aff / ALPHA_FILE))}: .*min_size"):
        run_task(cfg)


def test_alpha_that_is_not_a_number(compose, no_work):
    with pytest.raises(ValueError, match=r"task\.alpha.*'abc'"):
        run_task(compose("predict", ["task=segment", "task.alpha=abc"]))


def test_negative_crop_origin_names_the_origin():
    from inpaintaff.segment.pipeline import crop_window
    from inpaintaff.tasks.inpaintaff.patches import PatchDataModule

    with pytest.raises(ValueError, match=r"task\.crop.*origin"):
        crop_window([-4, 0, 10, 10], (50, 50))
    with pytest.raises(ValueError, match=r"task\.crop.*h, w"):
        crop_window([0, 0, 0, 10], (50, 50))
    with pytest.raises(ValueError, match=r"task\.crop.*origin"):
        PatchDataModule(None, crop=[0, -1, 10, 10])


def test_gt_ids_above_uint16_name_the_gt_file_and_frame(compose, tmp_path, synthetic_root):
    root = tmp_path / "ctc"
    raw = ctc.read_image(ctc.raw_path(synthetic_root, "SYNTH-HeLa", "02", 0))
    lab = ctc.read_labels(ctc.gt_seg_path(synthetic_root, "SYNTH-HeLa", "02", 0))
    lab[lab > 0] += 70000
    ctc.write_image(root / "BIG" / "02" / "t000.tif", raw)
    ctc.write_image(root / "BIG" / "02_GT" / "SEG" / "man_seg000.tif", lab.astype(np.uint32))
    cfg = compose("predict", ["task=segment", "task.split=predict", f"data.root={root}", "data.dataset=BIG",
                              "data.generate=null", "data.splits.predict=[{seq: '02', frames: [0]}]",
                              "task.method=cc"])
    gt = root / "BIG" / "02_GT" / "SEG" / "man_seg000.tif"
    with pytest.raises(InputError, match=rf"{re.escape(str(gt))}: .*02/t000.*65535"):
        run_task(cfg)


def _resume(compose, ckpt: Path, model: str = "inpaint_cpu"):
    return train(compose("train", [*TINY_TRAIN, f"model={model}", f"ckpt_path={ckpt}"]))


def test_resume_from_a_truncated_checkpoint(compose, tmp_path):
    bad = tmp_path / "cut.ckpt"
    data = (SHIPPED / "hela_inpaint_cpu.ckpt").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"{re.escape(str(bad))}: .*(truncated|cannot read)"):
        _resume(compose, bad)


def test_resume_from_an_exported_checkpoint(compose, tmp_path):
    ckpt = SHIPPED / "hela_inpaint_cpu.ckpt"
    assert "optimizer_states" not in torch.load(ckpt, map_location="cpu", weights_only=True)
    with pytest.raises(InputError, match=rf"{re.escape(str(ckpt))}: .*exported.*model\.init_from"):
        train(compose("train", ["model=inpaint_cpu", "trainer=cpu", "trainer.max_steps=1", f"ckpt_path={ckpt}"]))


def test_resume_from_a_checkpoint_of_another_kind(compose):
    ckpt = SHIPPED / "hela_fgnet_cpu.ckpt"
    with pytest.raises(InputError, match=rf"{re.escape(str(ckpt))}: .*FGNetModule.*InpaintingModule"):
        _resume(compose, ckpt)
