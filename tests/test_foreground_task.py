"""task=foreground: FGNET probabilities written per frame; tiled prediction with a halo."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import tifffile
import torch
import torch.nn.functional as F

from inpaintaff.io.foreground import foreground_path, read_foreground_metadata
from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.modules.net_inpainter import load_net_inpainter
from inpaintaff.tasks import run_task
from inpaintaff.tasks.checkpoints import checkpoint_fingerprint
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.tiling import predict_with_halo


def test_predict_with_halo_matches_whole_image():
    kernel = torch.ones(1, 1, 5, 5) / 25
    img = np.random.default_rng(0).random((70, 110)).astype(np.float32)
    tiled = predict_with_halo(lambda t: F.conv2d(t, kernel, padding=2), img, tile=32, halo=4)
    padded = torch.from_numpy(np.pad(img, 4, mode="reflect"))[None, None]
    whole = F.conv2d(padded, kernel, padding=2)[0, :, 4:-4, 4:-4].numpy()
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert predict_with_halo(lambda t: t.repeat(1, 3, 1, 1), img, tile=512, halo=8).shape == (3, 70, 110)


@pytest.fixture
def fgnet_ckpt(tmp_path):
    module = FGNetModule(depth=3, base_features=4, max_features=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    path = tmp_path / "fgnet.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_foreground_task_writes_probabilities(compose, fgnet_ckpt, tmp_path):
    cfg = compose("predict", ["task=foreground", f"ckpt={fgnet_ckpt}", "task.split=val", "task.tile=128"])
    out = run_task(cfg)
    assert len(out["foreground"]) == 2
    path = foreground_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    prob = tifffile.imread(path)
    assert prob.shape == (256, 256) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    assert path.with_suffix(".png").exists()
    assert read_foreground_metadata(path)["ckpt_sha1"] == checkpoint_fingerprint(fgnet_ckpt)
    # A rerun keeps these files; files of another checkpoint under the same out_dir are an error.
    assert run_task(cfg)["foreground"] == out["foreground"]
    other = tmp_path / "other.ckpt"
    other.write_bytes(fgnet_ckpt.read_bytes() + b"\0")  # loads the same, differs in bytes
    with pytest.raises(InputError, match=r"fg000\.tif: foreground probabilities of another checkpoint"):
        run_task(compose("predict", ["task=foreground", f"ckpt={other}", "task.split=val", "task.tile=128",
                                     f"task.out_dir={cfg.task.out_dir}"]))


def test_foreground_task_checkpoint_errors(compose, tmp_path):
    with pytest.raises(InputError, match=r"task=foreground needs a checkpoint: set ckpt=<path to an FGNetModule"):
        run_task(compose("predict", ["task=foreground"]))
    with pytest.raises(InputError, match="checkpoint not found"):
        run_task(compose("predict", ["task=foreground", f"ckpt={tmp_path / 'none.ckpt'}"]))
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(InputError, match="bad.ckpt: not a compatible FGNetModule checkpoint"):
        run_task(compose("predict", ["task=foreground", f"ckpt={bad}"]))


def test_affnet_task_writes_readable_affinities(compose, tmp_path):
    from inpaintaff.io.affinities import aff_path, read_affinities
    from inpaintaff.modules.affnet import AffNetModule
    from inpaintaff.offsets import OFFSETS

    module = AffNetModule(depth=3, base_features=4, max_features=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "affnet.ckpt")
    cfg = compose("predict", ["task=affnet", f"ckpt={tmp_path / 'affnet.ckpt'}", "task.split=val", "task.tile=128"])
    out = run_task(cfg)
    assert len(out["affinities"]) == 2
    aff, valid, offsets = read_affinities(aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 1))
    assert offsets == OFFSETS and aff.shape == (12, 256, 256)
    assert not valid[0, 0].any() and valid[0, 1:].all()  # offset (-1, 0) leaves the frame in row 0
    assert 0 <= aff.min() and aff.max() <= 1 and aff[valid].std() > 0


def test_foreground_task_skips_written_frames(compose, fgnet_ckpt):
    cfg = compose("predict", ["task=foreground", f"ckpt={fgnet_ckpt}", "task.split=val", "task.tile=128"])
    first = run_task(cfg)
    path = foreground_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    stamp = path.stat().st_mtime_ns
    second = run_task(cfg)
    assert second["foreground"] == first["foreground"] and path.stat().st_mtime_ns == stamp


def test_checkpoint_of_the_wrong_kind_says_which_kind(compose, fgnet_ckpt, tmp_path):
    from inpaintaff.modules.inpainting import InpaintingModule

    with pytest.raises(InputError, match=r"fgnet\.ckpt: .*an FGNetModule checkpoint \(task=foreground\).*"
                                         r"needs an AffNetModule checkpoint") as err:
        run_task(compose("predict", ["task=affnet", f"ckpt={fgnet_ckpt}", "task.split=val"]))
    assert len(str(err.value)) < 400  # the cause, not a list of state-dict keys
    with pytest.raises(InputError, match=r"an FGNetModule checkpoint .*needs an InpaintingModule") as err:
        load_net_inpainter(fgnet_ckpt)
    assert len(str(err.value)) < 400
    module = InpaintingModule(widths=[4, 8], kernel_sizes=[3, 3], feature_extractor="none")
    inpaint = tmp_path / "inpaint.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": "2.6.0"}, inpaint)
    with pytest.raises(InputError, match=r"an InpaintingModule checkpoint \(task=inpaintaff\).*needs an FGNetModule"):
        run_task(compose("predict", ["task=foreground", f"ckpt={inpaint}", "task.split=val"]))


def test_kept_outputs_compare_tile_halo_normalisation_and_input(compose, fgnet_ckpt, tmp_path, synthetic_root):
    """A rerun with another tile, halo or data.normalize is an error naming it; a frame whose input
    file differs (another data.root holding the same dataset name) is predicted again; an identical
    copy is kept (paths do not count)."""
    import shutil

    base = ["task=foreground", f"ckpt={fgnet_ckpt}", "task.split=val", "task.tile=128", "task.halo=8"]
    cfg = compose("predict", base)
    run_task(cfg)
    f0, f1 = (foreground_path(cfg.task.out_dir, "SYNTH-HeLa", "02", i) for i in (0, 1))
    stamps = [f0.stat().st_mtime_ns, f1.stat().st_mtime_ns]
    meta = read_foreground_metadata(f0)
    assert meta["tile"] == 128 and meta["halo"] == 8 and meta["normalize"] == {"low": 1.0, "high": 99.8}
    for change, key in {"task.tile=64": "tile", "task.halo=4": "halo", "data.normalize.high=99.0": "normalize"}.items():
        with pytest.raises(InputError, match=rf"fg000\.tif: foreground probabilities made otherwise \({key}\b.*"
                                             r"task\.overwrite=true"):
            run_task(compose("predict", [*base, change]))
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root / "SYNTH-HeLa", copy / "SYNTH-HeLa")
    run_task(compose("predict", [*base, f"data.root={copy}"]))
    assert [f0.stat().st_mtime_ns, f1.stat().st_mtime_ns] == stamps
    raw = copy / "SYNTH-HeLa" / "02" / "t000.tif"
    tifffile.imwrite(raw, tifffile.imread(raw)[::-1].copy())
    run_task(compose("predict", [*base, f"data.root={copy}"]))
    assert f0.stat().st_mtime_ns != stamps[0] and f1.stat().st_mtime_ns == stamps[1]
    from inpaintaff.io.records import file_sha1

    assert read_foreground_metadata(f0)["input_sha1"] == file_sha1(raw)


def test_affnet_task_compares_tile_and_halo(compose, tmp_path):
    from inpaintaff.io.affinities import aff_path
    from inpaintaff.modules.affnet import AffNetModule

    module = AffNetModule(depth=3, base_features=4, max_features=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "affnet.ckpt")
    base = ["task=affnet", f"ckpt={tmp_path / 'affnet.ckpt'}", "task.split=val", "task.tile=128"]
    cfg = compose("predict", base)
    run_task(cfg)
    path = aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    stamp = path.stat().st_mtime_ns
    for change, key in {"task.tile=64": "tile", "task.halo=4": "halo"}.items():
        with pytest.raises(InputError, match=rf"aff000\.tif: affinities made otherwise \({key}: "):
            run_task(compose("predict", [*base, change]))
    run_task(cfg)
    assert path.stat().st_mtime_ns == stamp


def test_a_folder_images_foreground_and_affinity_files_are_found_by_stem(compose, fgnet_ckpt, tmp_path):
    """The user's chain on a plain folder: task=foreground writes <dataset>/FG/<stem>.tif, which
    task=inpaintaff (skipping, region rules) and task=segment find, as segment finds AFF/<stem>.tif."""
    from inpaintaff.io.affinities import aff_path

    folder = tmp_path / "imgs"
    folder.mkdir()
    yy, xx = np.mgrid[:96, :96]
    image = 200 + 3000 * ((yy - 30) ** 2 + (xx - 30) ** 2 < 144) + 2500 * ((yy - 60) ** 2 + (xx - 64) ** 2 < 144)
    tifffile.imwrite(folder / "my cells.tif", image.astype(np.uint16))
    data = ["data=folder", f"data.images={folder}"]
    fg = run_task(compose("predict", ["task=foreground", *data, f"ckpt={fgnet_ckpt}", "task.split=predict",
                                      "task.scale.enabled=false"]))
    fg_dir = compose("predict", ["task=foreground", *data]).task.out_dir
    dataset = folder.name
    assert foreground_path(fg_dir, dataset, "", 0, "my cells").is_file() and fg["foreground"]
    aff = run_task(compose("predict", [
        "task=inpaintaff", *data, "task.inpainter=gaussian", "task.patch_size=32", "task.stride=16",
        "task.engine.iterations=4", "task.engine.d0=4", "task.pictures=false", "task.scale.enabled=false",
        "task.foreground.source=dir", f"task.foreground.dir={fg_dir}", "task.foreground.threshold=0.0",
        "task.engine.region_min_fg=1", "trainer=cpu", "trainer.enable_progress_bar=false"]))
    aff_dir = aff["out_dir"]
    assert aff_path(aff_dir, dataset, "", 0, "my cells").is_file()
    seg = run_task(compose("predict", [
        "task=segment", *data, "task.split=predict", "task.overlays=false", "task.affinities.source=dir",
        f"task.affinities.dir={aff_dir}", "task.foreground.source=dir", f"task.foreground.dir={fg_dir}",
        "task.foreground.threshold=0.0"]))
    assert seg["frames"][0]["n_pred"] >= 1
