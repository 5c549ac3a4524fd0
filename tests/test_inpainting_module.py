"""InpaintingModule: learning on a fixed batch, the paper preset, checkpoints, Hydra training."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, Dataset

from inpaintaff.modules.export import slim_checkpoint
from inpaintaff.modules.inpainting import InpaintingModule
from inpaintaff.utils.errors import InputError

TINY = dict(widths=(8, 16, 16), kernel_sizes=(5, 3, 3), feature_extractor="none")


def _blobs(n=4, size=32, seed=0) -> torch.Tensor:
    """Bright discs on a dark background, like nuclei."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(4, size - 4, 2).tolist() + [rng.uniform(3, 7)]
            out[i, 0][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.5, 1.0)
    return torch.from_numpy(out + 0.05 * rng.standard_normal(out.shape).astype(np.float32))


class _Batches(Dataset):
    def __init__(self, images: torch.Tensor, n: int):
        self.images, self.n = images, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": self.images[i % len(self.images)]}


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    m = InpaintingModule(**TINY, lr=5e-3, lr_schedule="constant", warmup_steps=0)
    opt = m.configure_optimizers()["optimizer"]
    batch = {"image": _blobs(n=2, size=24)}

    def loss_now():
        return m._step(batch, np.random.default_rng(0))[3]  # the same masks every time

    first = loss_now().item()
    for _ in range(25):
        opt.zero_grad()
        loss_now().backward()
        opt.step()
    assert loss_now().item() < 0.6 * first


def test_paper_preset_runs_one_step_on_cpu():
    torch.manual_seed(0)
    m = InpaintingModule(feature_extractor="none")  # paper widths 64..512
    batch = {"image": torch.rand(1, 1, 32, 32)}
    _, _, pred, loss, _ = m._step(batch, np.random.default_rng(0))
    loss.backward()
    assert pred.shape == (1, 1, 32, 32) and torch.isfinite(loss)
    assert all(p.grad is not None for p in m.parameters())


def test_inpaint_api_any_size_and_hidden_independence():
    torch.manual_seed(0)
    m = InpaintingModule(**TINY).eval()
    image = torch.rand(2, 1, 23, 30)
    known = (torch.rand(2, 1, 23, 30) > 0.4).float()
    with torch.no_grad():
        out = m(image, known)
        out2 = m(torch.where(known.bool(), image, torch.rand_like(image)), known.bool())
    assert out.shape == image.shape
    torch.testing.assert_close(out, out2)


def test_step_under_bf16_autocast():
    torch.manual_seed(0)
    m = InpaintingModule(**TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, _, pred, loss, _ = m._step({"image": _blobs(2)}, np.random.default_rng(0))
    assert torch.isfinite(loss)
    loss.backward()


def test_freeze_encoder_bn():
    m = InpaintingModule(**TINY, freeze_encoder_bn=True).train()
    enc_bn = [mod for mod in m.net.enc.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    dec_bn = [mod for mod in m.net.dec.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert enc_bn and all(not b.training for b in enc_bn)
    assert dec_bn and all(b.training for b in dec_bn)
    before = enc_bn[0].running_mean.clone()
    m._step({"image": _blobs(2)}, np.random.default_rng(0))
    torch.testing.assert_close(enc_bn[0].running_mean, before)


def test_lr_schedules():
    m = InpaintingModule(**TINY, lr=1.0, lr_schedule="step", lr_milestones=[2, 4], warmup_steps=0)
    cfg = m.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="lr_schedule"):
        InpaintingModule(**TINY, lr_schedule="linear")


def test_fit_logs_images_and_checkpoint_reloads(tmp_path):
    torch.manual_seed(0)
    m = InpaintingModule(**TINY, image_log_every_n_steps=2, lr_schedule="cosine", warmup_steps=1)
    data = _Batches(_blobs(8), 8)
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    trainer = pl.Trainer(max_steps=4, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=1, log_every_n_steps=1)
    trainer.fit(m, DataLoader(data, batch_size=4), DataLoader(data, batch_size=4))
    assert "val/loss" in trainer.callback_metrics and "val/hole_l1" in trainer.callback_metrics
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0]), size_guidance={"images": 0})
    acc.Reload()
    assert "train/input_mask_pred_composite" in acc.Tags()["images"]
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    back = InpaintingModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    m.eval()
    x, k = torch.rand(1, 1, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(back(x, k), m(x, k))
    slim = slim_checkpoint(ckpt, tmp_path / "slim.ckpt")
    assert slim.stat().st_size < ckpt.stat().st_size
    back2 = InpaintingModule.load_from_checkpoint(slim, map_location="cpu").eval()
    with torch.no_grad():
        torch.testing.assert_close(back2(x, k), m(x, k))
    with pytest.raises(InputError, match="not a Lightning checkpoint"):
        torch.save({"x": 1}, tmp_path / "junk.ckpt")
        slim_checkpoint(tmp_path / "junk.ckpt", tmp_path / "out.ckpt")


@pytest.mark.slow
def test_train_py_fast_dev_run_on_synthetic(compose):
    from inpaintaff.train import train

    cfg = compose("train", [
        "model=inpaint_cpu", "model.widths=[8,16,16]", "model.kernel_sizes=[5,3,3]",
        "trainer=cpu", "trainer.fast_dev_run=true", "data.batch_size=2", "data.crop_size=64",
        "logger=tensorboard",
    ])
    out = train(cfg)
    assert np.isfinite(out["metrics"]["train/loss"])
    assert "val/loss" in out["metrics"]


def test_paper_config_builds_and_steps_with_its_extractor(compose):
    import hydra

    from inpaintaff.losses.features import resolve_extractor_name

    cfg = compose("train", ["model=inpaint"])
    m = hydra.utils.instantiate(cfg.model)
    assert list(m.hparams.widths) == [64, 128, 256, 512, 512] and m.net.depth == 4
    assert isinstance(m.hparams.widths, list)  # plain containers, not OmegaConf ones
    _, _, pred, loss, terms = m._step({"image": torch.rand(1, 1, 32, 32)}, np.random.default_rng(0))
    loss.backward()
    if resolve_extractor_name("auto", None) != "none":
        assert "perceptual" in terms and "style" in terms
    assert torch.isfinite(loss) and all(p.grad is not None for p in m.parameters())
    assert m.state_dict().keys() == {k for k in m.state_dict() if k.startswith("net.")}


def test_init_from_starts_the_net_from_a_checkpoint(tmp_path) -> None:
    small = dict(widths=[4, 8], kernel_sizes=[3, 3], feature_extractor="none")
    source = InpaintingModule(**small)
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, path)
    module = InpaintingModule(**small, init_from=str(path))
    for name, value in source.net.state_dict().items():
        assert torch.equal(module.net.state_dict()[name], value), name
    assert "init_from" not in module.hparams  # a path of this machine does not travel with checkpoints
    assert not all(torch.equal(a, b) for a, b in zip(InpaintingModule(**small).net.parameters(),
                                                     source.net.parameters()))
    with pytest.raises(InputError, match="do not fit"):
        InpaintingModule(widths=[4, 16], kernel_sizes=[3, 3], feature_extractor="none", init_from=str(path))
    with pytest.raises(InputError, match="not found"):
        InpaintingModule(**small, init_from=str(tmp_path / "missing.ckpt"))


def test_python_defaults_are_the_yaml_defaults(compose):
    """The module's keyword defaults (for array-in use) are conf/model/inpaint.yaml's, where both have one."""
    import inspect

    from omegaconf import OmegaConf

    yaml_model = OmegaConf.to_container(compose("train", ["model=inpaint"]).model, resolve=True)
    params = inspect.signature(InpaintingModule.__init__).parameters
    shared = {k for k, p in params.items() if k in yaml_model and p.default is not inspect.Parameter.empty
              and k not in ("mask_seed", "masks", "loss_weights", "kernel_sizes")}  # interpolated or derived inside
    assert {"warmup_steps", "lr", "lr_schedule", "widths"} <= shared
    normal = {k: list(params[k].default) if isinstance(params[k].default, tuple) else params[k].default for k in shared}
    assert normal == {k: yaml_model[k] for k in shared}
