"""train.py as a user runs it: a Hydra command line in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", f"paths.root_dir={tmp_path}", *args],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_train_cli_writes_checkpoint_and_tensorboard(tmp_path, data_dir):
    proc = _run([
        f"paths.data_dir={data_dir}", "hydra.run.dir=" + str(tmp_path / "run"),
        "model=fgnet", "model.depth=3", "model.base_features=8", "model.max_features=16",
        "data.train_mode=labeled", "data.crop_size=64", "data.batch_size=2", "data.samples_per_epoch=4",
        "data.val_samples=2", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
        "data.diameter=null",
    ], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    ckpts = list((run / "checkpoints").glob("*.ckpt"))
    assert ckpts, sorted(p.name for p in run.rglob("*"))
    # The checkpoint records the nucleus size of its training labels (none given).
    from inpaintaff.io.ctc import read_labels
    from inpaintaff.segment.diameter import object_diameters
    from inpaintaff.tasks.checkpoints import checkpoint_diameter

    gt = sorted((data_dir / "synthetic" / "SYNTH-HeLa" / "01_GT" / "SEG").glob("man_seg*.tif"))
    expected = np.median(np.concatenate([object_diameters(read_labels(p)) for p in gt]))
    assert all(checkpoint_diameter(c) == pytest.approx(expected) for c in ckpts)
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert (run / ".hydra" / "config.yaml").exists()


@pytest.mark.slow
def test_train_cli_unknown_key_fails_clearly(tmp_path):
    proc = _run(["trainer.max_epochz=1"], tmp_path)
    assert proc.returncode != 0
    assert "max_epochz" in proc.stderr and "Could not override" in proc.stderr


def test_train_generates_the_embedded_data_on_first_use(compose, tmp_path):
    """The record and the nucleus size read the frames before training: on a fresh machine the
    synthetic set must be made first (as `make demo` does)."""
    from inpaintaff.train import train

    fresh = tmp_path / "fresh"
    cfg = compose("train", [f"paths.data_dir={fresh}", "model=inpaint_cpu", "model.widths=[4,8]",
                            "model.kernel_sizes=[3,3]", "trainer=cpu", "trainer.max_steps=1", "trainer.max_epochs=-1",
                            "trainer.limit_val_batches=0", "data.crop_size=32", "data.batch_size=2",
                            "data.samples_per_epoch=2", "logger=csv", "trainer.enable_progress_bar=false"])
    out = train(cfg)
    assert out["global_step"] == 1 and (fresh / "synthetic" / "SYNTH-HeLa" / "01").is_dir()
