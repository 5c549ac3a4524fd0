"""SIGTERM (``kill``, ``timeout``, a scheduler at the end of a job's time) stops a run as Ctrl-C does:
at the next safe point, with what is resumable saved, and a non-zero exit; a rerun resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from inpaintaff.tasks.inpaintaff.writer import partial_dir

PROJECT = Path(__file__).resolve().parents[1]
EXIT_SIGTERM = 128 + signal.SIGTERM

# task=inpaintaff on a 64 x 64 crop, one 32-pixel patch per batch, saved after every batch:
# 81 patches, many seconds of work, so the signal falls in the middle.
SLOW_AFF = [
    "task=inpaintaff", "task.inpainter=gaussian", "task.crop=[100,60,64,64]", "task.patch_size=32",
    "task.stride=4", "task.batch_size=1", "task.save_every_n_batches=1", "task.engine.iterations=6",
    "task.engine.d0=4", "task.engine.min_region=30", "task.engine.max_depth=3", "task.pictures=false",
    "trainer=cpu", "trainer.enable_progress_bar=false", "task.torch_threads=1",
]
N_PATCHES = 81


def _start(script: str, args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, script, *args], cwd=PROJECT, stdout=fh, stderr=subprocess.STDOUT,
                                env=env)


def _wait_for(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before it had done some work:\n"
                        + log.read_text()[-3000:])
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("the run did no work in time:\n" + log.read_text()[-3000:])
        time.sleep(0.2)


def _terminate(proc: subprocess.Popen, log: Path, timeout: float = 30) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still running {timeout} s after SIGTERM:\n" + log.read_text()[-3000:])
    return rc, time.monotonic() - t0


def _done_ids(out: Path) -> set[int]:
    ids: set[int] = set()
    for p in partial_dir(out, "SYNTH-HeLa").glob("*.npz"):
        if p.name.startswith("."):  # a file being written (atomic_path's temporary name)
            continue
        with np.load(p) as z:
            ids |= set(z["done"].tolist())
    return ids


@pytest.mark.slow
def test_sigterm_stops_task_inpaintaff_keeping_its_partial_sums(compose, data_dir, tmp_path, caplog) -> None:
    out, log = tmp_path / "aff", tmp_path / "run.log"
    args = [f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / 'run'}",
            f"task.out_dir={out}", *SLOW_AFF]
    proc = _start("predict.py", args, log)
    _wait_for(lambda: bool(_done_ids(out)) if partial_dir(out, "SYNTH-HeLa").is_dir() else False, proc, log)
    rc, _ = _terminate(proc, log)
    text = log.read_text()
    assert rc == EXIT_SIGTERM, text[-3000:]
    assert "SIGTERM" in text and "run the same command again" in text, text[-3000:]
    done = _done_ids(out)
    assert 0 < len(done) < N_PATCHES, "stopped with nothing saved, or only after all the work"
    assert not (out / ".inpaintaff.lock").exists(), "the folder lock outlived the run"

    from inpaintaff.tasks.inpaintaff import run

    with caplog.at_level("INFO", logger="inpaintaff.tasks.inpaintaff"):
        result = run(compose("predict", [*SLOW_AFF, f"task.out_dir={out}"]))
    assert f"{N_PATCHES - len(done)} patches of 1 frame(s) to process" in caplog.text
    assert result["totals"]["patches"] == N_PATCHES


class StepFile(pl.Callback):
    """Writes the global step to ``$STEP_FILE`` after each step (for the test to watch), slowly."""

    def on_train_batch_end(self, trainer: pl.Trainer, *_) -> None:
        time.sleep(0.05)
        Path(os.environ["STEP_FILE"]).write_text(str(trainer.global_step))


TINY_TRAIN = [
    "model=inpaint_cpu", "model.widths=[4,8]", "model.kernel_sizes=[3,3]", "model.warmup_steps=2",
    "model.image_log_every_n_steps=0", "trainer=cpu", "trainer.max_epochs=-1", "trainer.limit_val_batches=0",
    "trainer.enable_progress_bar=false", "logger=csv", "data.crop_size=32", "data.batch_size=2",
    "data.samples_per_epoch=4",
]


@pytest.mark.slow
@pytest.mark.parametrize("callbacks", ["default", "none"])
def test_sigterm_saves_a_training_checkpoint_that_resumes(compose, data_dir, tmp_path, monkeypatch,
                                                         callbacks) -> None:
    run_dir, log, steps = tmp_path / "run", tmp_path / "run.log", tmp_path / "steps"
    monkeypatch.setenv("STEP_FILE", str(steps))
    args = [f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}",
            f"callbacks={callbacks}", *TINY_TRAIN, "trainer.max_steps=100000",
            "+callbacks.steps._target_=tests.test_sigterm.StepFile"]
    proc = _start("train.py", args, log)
    _wait_for(lambda: steps.is_file() and steps.read_text().strip() not in ("", "0", "1"), proc, log)
    rc, _ = _terminate(proc, log)
    text = log.read_text()
    assert rc == EXIT_SIGTERM, text[-3000:]
    assert "SIGTERM" in text, text[-3000:]
    ckpt = run_dir / "checkpoints" / "interrupted.ckpt"
    assert ckpt.is_file(), text[-3000:]
    assert f"ckpt_path={ckpt}" in text  # the log says how to resume
    stopped = int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])
    assert stopped >= 2

    from inpaintaff.train import train
    from tests.test_train_resume import FirstStepProbe

    FirstStepProbe.seen = {}
    resumed = train(compose("train", [f"callbacks={callbacks}", *TINY_TRAIN, f"trainer.max_steps={stopped + 2}",
                                      "+callbacks.probe._target_=tests.test_train_resume.FirstStepProbe",
                                      f"ckpt_path={ckpt}"]))
    assert FirstStepProbe.seen["global_step"] == stopped, "the resumed run did not start at the interrupted step"
    assert resumed["global_step"] == stopped + 2
    assert ckpt.is_file(), "the checkpoint resumed from was deleted"


@pytest.mark.slow
def test_sigterm_stops_the_folder_command_between_images(tmp_path, caplog) -> None:
    import tifffile

    from inpaintaff.data.synthetic import synthetic_frame
    from inpaintaff.tasks.segment_folder import run_segment_folder

    imgs, out, log = tmp_path / "images", tmp_path / "out", tmp_path / "run.log"
    imgs.mkdir()
    n = 12
    for i in range(n):
        tifffile.imwrite(imgs / f"im{i:02d}.tif", synthetic_frame((96, 96), seed=i, radius=12.0, density=0.3)[0])
    proc = _start("-m", ["inpaintaff.cli", "segment", str(imgs), "--out", str(out), "--diameter", "24",
                         "trainer.enable_progress_bar=false", "task.overlays=false"], log)
    records = out / "records"
    _wait_for(lambda: records.is_dir() and any(records.glob("*.json")), proc, log)
    rc, _ = _terminate(proc, log)
    text = log.read_text()
    assert rc == EXIT_SIGTERM, text[-3000:]
    assert "SIGTERM" in text, text[-3000:]
    kept = len(list(records.glob("*.json")))
    assert 0 < kept < n
    assert not list(out.rglob("*.tmp*")), "a half-written file was left"
    assert not (out / ".inpaintaff.lock").exists(), "the folder lock outlived the run"
    done = run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "data.diameter=24",
                               "trainer.enable_progress_bar=false", "task.overlays=false"])
    assert done["n_kept"] == kept and done["n_images"] == n


def test_sigterm_outside_a_lightning_run_stops_at_once() -> None:
    from inpaintaff.utils.signals import EXIT_SIGTERM as CODE
    from inpaintaff.utils.signals import sigterm_stops

    reached = []
    with pytest.raises(SystemExit) as exc, sigterm_stops():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        reached.append(1)
    assert exc.value.code == CODE == EXIT_SIGTERM and not reached
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler before is back


class _Steps(pl.LightningModule):
    """A predict loop of six batches that signals itself during ``at``."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.done = at, []
        self.layer = torch.nn.Linear(1, 1)

    def predict_step(self, batch, batch_idx):
        if batch_idx == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the batch under way finishes
        self.done.append(batch_idx)
        return batch


@pytest.mark.parametrize("at", [2, 5])
def test_sigterm_in_a_lightning_run_stops_after_the_batch_under_way(compose, at) -> None:
    """Also after the last batch: a task chaining sub-tasks (label_budget, table1) stops before the next."""
    from inpaintaff.tasks.compose import run_subtask
    from inpaintaff.utils.instantiate import build_trainer
    from inpaintaff.utils.signals import sigterm_stops

    cfg = compose("predict", ["trainer=cpu", "trainer.enable_progress_bar=false", "logger=csv"])
    module = _Steps(at)
    loader = torch.utils.data.DataLoader(torch.zeros(6, 1), batch_size=1)
    next_task = []
    with pytest.raises(SystemExit) as exc, sigterm_stops():
        build_trainer(cfg).predict(module, dataloaders=loader, return_predictions=False)
        next_task.append(1)
        run_subtask(compose("predict", ["task=report"]))
    assert exc.value.code == EXIT_SIGTERM
    assert module.done == list(range(at + 1)) and not next_task
