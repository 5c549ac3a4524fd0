"""DISTILL: a student trained on the engine's affinities (no GT), predicted like AFFNET, segmented like any."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import open_dict

from inpaintaff.data.datamodule import CTCDataModule
from inpaintaff.io.affinities import read_affinity_metadata
from inpaintaff.modules.distill import DistillModule, masked_soft_bce
from inpaintaff.tasks import run_task
from inpaintaff.tasks.checkpoints import checkpoint_kind
from inpaintaff.train import train
from inpaintaff.utils.errors import InputError

TEACHER = [
    "task=inpaintaff", "task.inpainter=gaussian", "task.patch_size=32", "task.stride=32", "task.batch_size=16",
    "task.engine.iterations=6", "task.engine.d0=4", "task.engine.min_region=30", "task.engine.max_depth=2",
    "task.pictures=false", "trainer=cpu", "trainer.enable_progress_bar=false",
    "data.splits.predict=[{seq:'01',frames:[0,1]}]",
]
STUDENT = [
    "model=distill_cpu", "model.depth=3", "data.train_mode=affinities", "data.splits.raw=[{seq:'01',frames:[0,1]}]",
    "data.crop_size=64", "data.batch_size=4", "data.splits.val=[]", "trainer=cpu", "trainer.limit_val_batches=0",
    "trainer.enable_progress_bar=false",
]


def test_soft_bce_counts_only_valid_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 12, 8, 8, generator=g), torch.rand(2, 12, 8, 8, generator=g)
    valid = torch.rand(2, 12, 8, 8, generator=g) > 0.5
    loss = masked_soft_bce(logits, target, valid)
    p = torch.sigmoid(logits[valid])
    manual = -(target[valid] * torch.log(p) + (1 - target[valid]) * torch.log(1 - p)).mean()
    assert torch.allclose(loss, manual, atol=1e-5)
    changed = torch.where(valid, target, 1 - target)  # other targets where invalid: no change
    assert torch.equal(masked_soft_bce(logits, changed, valid), loss)
    with pytest.raises(ValueError, match="loss"):
        DistillModule(loss="l2")


def _teacher(compose, tmp_path: Path) -> Path:
    cfg = compose("predict", [*TEACHER, f"task.out_dir={tmp_path / 'teacher'}"])
    run_task(cfg)
    return tmp_path / "teacher"


@pytest.mark.slow
def test_student_learns_the_engine_affinities_without_reading_gt(compose, tmp_path, monkeypatch) -> None:
    teacher = _teacher(compose, tmp_path)

    def no_gt(self, ref):
        raise AssertionError(f"the student read GT of {ref}")

    monkeypatch.setattr(CTCDataModule, "load_labels", no_gt)
    cfg = compose("train", [*STUDENT, f"data.teacher_dir={teacher}", "trainer.max_steps=100",
                            "model.lr=3e-3", "model.dropout=0.0", "data.samples_per_epoch=100"])
    out = train(cfg)
    ckpt = out["checkpoint"]
    assert checkpoint_kind(ckpt) == "DistillModule"
    # It learned: the student's masked loss on the teacher's frames is below that of its first steps.
    module = DistillModule.load_from_checkpoint(ckpt).eval()
    dm = CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    dm.setup("fit")
    batch = next(iter(torch.utils.data.DataLoader(dm._train, batch_size=8)))
    fresh = DistillModule(**{**module.hparams})
    with torch.no_grad():
        trained = module.distill_loss(module(batch["image"]), batch["target"], batch["valid"])
        untrained = fresh.eval().distill_loss(fresh(batch["image"]), batch["target"], batch["valid"])
    assert trained < 0.85 * untrained
    monkeypatch.undo()
    # task=affnet takes the student's checkpoint and writes affinities marked "distill" ...
    pred = compose("predict", ["task=affnet", f"ckpt={ckpt}", "task.split=val", f"task.out_dir={tmp_path / 'aff'}",
                               "task.tile=64", "task.halo=16"])
    result = run_task(pred)
    assert result["source"] == "distill" and result["seconds_per_frame"] > 0
    assert read_affinity_metadata(result["affinities"][0])["source"] == "distill"
    # Files of another checkpoint under the same out_dir are not taken as done.
    (tmp_path / "other.ckpt").write_bytes(Path(ckpt).read_bytes() + b"\0")  # loads the same, differs in bytes
    other = compose("predict", ["task=affnet", f"ckpt={tmp_path / 'other.ckpt'}", "task.split=val",
                                f"task.out_dir={tmp_path / 'aff'}", "task.tile=64", "task.halo=16"])
    with pytest.raises(InputError, match=r"aff000\.tif: affinities of another checkpoint"):
        run_task(other)
    # ... which task=segment reads like the engine's, under the row name DISTILL.
    seg = compose("predict", ["task=segment", "task.split=val", "task.affinities.source=dir",
                              f"task.affinities.dir={tmp_path / 'aff'}", "task.overlays=false"])
    with open_dict(seg):
        seg.paths.output_dir = str(tmp_path / "seg")
    scored = run_task(seg)
    assert scored["label"] == "DISTILL + TRUEFG" and 0.0 <= scored["seg"] <= 1.0


def test_student_needs_its_teacher(compose, tmp_path) -> None:
    with pytest.raises(ValueError, match="train_mode=affinities"):
        train(compose("train", ["model=distill_cpu", "trainer.fast_dev_run=true", "trainer=cpu"]))
    with pytest.raises(InstantiationException, match="teacher_dir"):  # Hydra wraps the data module's error
        train(compose("train", [*STUDENT, "trainer.fast_dev_run=true"]))
    with pytest.raises(InputError, match=r"aff000\.tif: affinity file not found"):
        train(compose("train", [*STUDENT, f"data.teacher_dir={tmp_path / 'none'}", "trainer.fast_dev_run=true"]))
