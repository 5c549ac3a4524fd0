"""Training resumed from ``ckpt_path`` continues where it stopped (step, weights, optimizer, schedule)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from inpaintaff.train import train

STEPS = 3
# A tiny inpainting net on small crops: two batches per epoch, so the stop falls inside an epoch.
TINY = [
    "model=inpaint_cpu", "model.widths=[4,8]", "model.kernel_sizes=[3,3]", "model.warmup_steps=2",
    "model.image_log_every_n_steps=0", "trainer=cpu", "trainer.max_epochs=-1", "trainer.limit_val_batches=0",
    "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "logger=csv",
    "data.crop_size=32", "data.batch_size=2", "data.samples_per_epoch=4",
    "+callbacks.probe._target_=tests.test_train_resume.FirstStepProbe",
]


class FirstStepProbe(pl.Callback):
    """Records, before the run's first optimisation step, the step count and the state it starts from."""

    seen: dict = {}

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch, batch_idx: int) -> None:
        if "global_step" in FirstStepProbe.seen:
            return
        opt = trainer.optimizers[0]
        FirstStepProbe.seen.update(
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
            weights={k: v.detach().clone() for k, v in module.state_dict().items()},
            adam_steps=[float(s["step"]) for s in opt.state.values()],
            exp_avg={i: s["exp_avg"].clone() for i, s in enumerate(opt.state.values())},
            lr=opt.param_groups[0]["lr"],
        )


def _run(compose, overrides: list[str]) -> tuple[dict, dict]:
    FirstStepProbe.seen = {}
    out = train(compose("train", [*TINY, *overrides]))
    return out, dict(FirstStepProbe.seen)


def test_training_resumed_from_ckpt_path_continues_where_it_stopped(compose, tmp_path: Path) -> None:
    first, start = _run(compose, [f"trainer.max_steps={STEPS}"])
    assert first["global_step"] == STEPS and start["global_step"] == 0
    last = Path(first["checkpoint"]).with_name("last.ckpt")
    stop = tmp_path / "stop.ckpt"  # the resumed run writes into the same folder
    shutil.copy(last, stop)
    ckpt = torch.load(stop, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == STEPS

    second, resumed = _run(compose, [f"trainer.max_steps={2 * STEPS}", f"ckpt_path={stop}"])
    assert resumed["global_step"] == STEPS, "the resumed run started from step 0"
    assert resumed["epoch"] == ckpt["epoch"]
    assert second["global_step"] == 2 * STEPS
    # It starts from the checkpoint's weights, optimizer moments and learning-rate schedule.
    assert resumed["weights"].keys() == ckpt["state_dict"].keys()
    for name, value in ckpt["state_dict"].items():
        assert torch.equal(resumed["weights"][name], value), name
    saved = ckpt["optimizer_states"][0]["state"]
    assert resumed["adam_steps"] == [float(s["step"]) for s in saved.values()] == [float(STEPS)] * len(saved)
    for i, s in enumerate(saved.values()):
        assert torch.equal(resumed["exp_avg"][i], s["exp_avg"])
    assert resumed["lr"] == ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert ckpt["lr_schedulers"][0]["last_epoch"] == STEPS


def test_resuming_with_other_settings_or_changed_data_is_an_error(compose, tmp_path: Path, synthetic_root) -> None:
    """The checkpoint carries the run's record; a resume that would train on other data or settings
    stops before training and names what differs (an unchanged resume is fine, above)."""
    from inpaintaff.tasks.checkpoints import checkpoint_meta
    from inpaintaff.utils.errors import InputError

    first, _ = _run(compose, [f"trainer.max_steps={STEPS}"])
    stop = tmp_path / "stop.ckpt"
    shutil.copy(Path(first["checkpoint"]).with_name("last.ckpt"), stop)
    assert checkpoint_meta(stop)["record"]["inputs"], "no record in the checkpoint"
    with pytest.raises(InputError, match=r"other settings or data .*data.normalize.high: 99.8 in the file, 99.0 now"):
        _run(compose, [f"trainer.max_steps={2 * STEPS}", f"ckpt_path={stop}", "data.normalize.high=99.0"])
    # A training frame edited in place (same name, other content).
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data / "synthetic")
    frame = data / "synthetic" / "SYNTH-HeLa" / "01" / "t000.tif"
    import tifffile

    tifffile.imwrite(frame, tifffile.imread(frame)[::-1].copy())
    with pytest.raises(InputError, match=r"inputs\.raw/01/t000/image"):
        _run(compose, [f"trainer.max_steps={2 * STEPS}", f"ckpt_path={stop}", f"paths.data_dir={data}"])


def test_a_net_finished_before_augmentation_existed_is_read_back(compose, tmp_path: Path, monkeypatch) -> None:
    """A finished net whose key has no data.augment (written before it existed) equals today's key when
    today's augmentation is off, and differs when it is on."""
    import json

    from inpaintaff.tasks.training import TRAIN_RESULT, data_container, fit_or_resume
    from inpaintaff.utils.errors import InputError

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("inpaintaff.train.train", no_training)
    tcfg = compose("train", ["model=fgnet_cpu", "data.train_mode=labeled"])
    data = data_container(tcfg)
    old = {k: v for k, v in data.items() if k != "augment"}
    out = tmp_path / "net"
    out.mkdir()
    (out / TRAIN_RESULT).write_text(json.dumps({"overrides": [], "data": old, "checkpoint": "x.ckpt"}))
    assert fit_or_resume(tcfg, out, {"overrides": [], "data": data})["checkpoint"] == "x.ckpt"
    with pytest.raises(InputError, match="other settings"):
        fit_or_resume(tcfg, out, {"overrides": [], "data": {**data, "augment": {**data["augment"], "flips": True}}})
