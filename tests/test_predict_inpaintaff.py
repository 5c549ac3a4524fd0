"""`predict.py task=inpaintaff`: patches -> engine -> writer -> files; resume; bad input."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from inpaintaff.data.datamodule import CTCDataModule
from inpaintaff.igm.affinities import AffinityAccumulator, patch_affinities
from inpaintaff.igm.inpainters import GaussianInpainter
from inpaintaff.igm.split import SplitEngine
from inpaintaff.io.affinities import aff_path, read_affinities
from inpaintaff.modules.net_inpainter import load_net_inpainter
from inpaintaff.tasks.inpaintaff import run
from inpaintaff.tasks.inpaintaff.module import InpaintAffModule
from inpaintaff.tasks.inpaintaff.patches import PatchDataModule, foreground_skip_spec
from inpaintaff.tasks.inpaintaff.writer import AffinityWriter, partial_dir
from inpaintaff.utils.errors import InputError

# Small and quick: a 48 x 80 crop, 32-pixel patches, a short schedule.
QUICK = [
    "task=inpaintaff", "task.inpainter=gaussian", "task.crop=[100,60,48,80]", "task.patch_size=32",
    "task.stride=16", "task.batch_size=4", "task.engine.iterations=6", "task.engine.d0=4",
    "task.engine.min_region=30", "task.engine.max_depth=3", "trainer=cpu", "logger=tensorboard",
    "trainer.enable_progress_bar=false",
]


def _expected(cfg, data) -> np.ndarray:
    """The same affinities computed directly: engine on each patch, accumulated by hand."""
    pdm = PatchDataModule(data, 32, 16, 4, crop=[100, 60, 48, 80], seed=int(cfg.seed))
    pdm.setup()
    engine = SplitEngine(GaussianInpainter(4.0), iterations=6, d0=4, min_region=30, max_depth=3)
    info = pdm.frames[0]
    acc = AffinityAccumulator(info.full_shape)
    for batch in pdm.predict_dataloader():
        res = engine.run(batch["image"], batch["seed"].tolist())
        aff, valid = patch_affinities(res.leaf_ids)
        for i in range(len(aff)):
            acc.add(aff[i].numpy(), valid.numpy(), int(batch["y"][i]) + 100, int(batch["x"][i]) + 60)
    return acc.result()


def test_predict_writes_affinities_pictures_and_summary(compose) -> None:
    cfg = compose("predict", QUICK)
    result = run(cfg)
    out = Path(cfg.task.out_dir)
    path = aff_path(out, "SYNTH-HeLa", "02", 0)
    aff, valid, offsets = read_affinities(path)
    assert aff.shape == (12, 256, 256) and len(offsets) == 12
    # Only pairs inside the crop were seen.
    assert valid[:, 100:148, 60:140].any() and not valid[:, :100].any() and not valid[:, :, 140:].any()
    assert aff.min() >= 0 and aff.max() <= 1
    exp_aff, exp_valid = _expected(cfg, CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"}))
    np.testing.assert_array_equal(valid, exp_valid)
    np.testing.assert_array_equal(aff, exp_aff)
    frame = result["frames"][0]
    assert Path(frame["affinity_png"]).is_file() and Path(frame["hierarchy_png"]).is_file()
    assert frame["n_patches"] == 2 * 4
    assert result["forward_passes_per_patch"] > 0 and result["totals"]["patches"] == 8
    assert (Path(cfg.paths.output_dir) / "inpaintaff_result.json").is_file()
    assert list((Path(cfg.paths.output_dir) / "tensorboard").rglob("events.*"))
    assert not list(partial_dir(out, "SYNTH-HeLa").glob("*.npz"))  # merged and removed

    # Run again: the written frame is skipped (file untouched).
    mtime = path.stat().st_mtime_ns
    run(cfg)
    assert path.stat().st_mtime_ns == mtime


def test_analytic_engine_runs_on_one_thread_and_gives_the_callers_back(compose, monkeypatch) -> None:
    """torch_threads=auto: one torch thread for the analytic inpainter (benchmarks/omp_wait_policy.py),
    torch's default for a net; a number is taken as it is; the caller's count is restored after."""
    from inpaintaff.tasks.inpaintaff import engine_threads

    assert engine_threads("auto", "gaussian") == 1 and engine_threads("auto", "net") is None
    assert engine_threads(None, "gaussian") is None and engine_threads(3, "net") == 3
    seen = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), set_threads(n)))
    before = torch.get_num_threads()
    run(compose("predict", QUICK))  # the default: auto
    assert seen == [1, before] and torch.get_num_threads() == before
    seen.clear()
    run(compose("predict", [*QUICK, "task.torch_threads=null", "task.overwrite=true"]))
    assert seen == [before]  # nothing set; the count given back


def test_interrupted_run_resumes_from_partial_sums(compose, caplog) -> None:
    cfg = compose("predict", QUICK)
    data = CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    data.prepare_data()
    # What an interrupted run leaves: a partial file with the first batches only.
    from inpaintaff.tasks.inpaintaff import build_inpainter

    inpainter, desc = build_inpainter("gaussian", None, 4.0)
    from inpaintaff.igm.split import EngineConfig

    engine = EngineConfig(**cfg.task.engine)
    settings = {"patch_size": 32, "stride": 16, "crop": [100, 60, 48, 80],
                "foreground": foreground_skip_spec(None),
                "seed": int(cfg.seed), "engine": engine.result_settings(), **desc}
    from inpaintaff.data.scaled import ScaledFrames
    from inpaintaff.io.records import source_settings
    from inpaintaff.segment.scale import ScaleSpec
    from inpaintaff.tasks.inpaintaff import frame_records
    from inpaintaff.utils.config import typed

    settings["scale"] = ScaledFrames(data, None, typed(cfg.task.scale, ScaleSpec)).record()  # the analytic inpainter
    settings.update(source_settings(data))
    pdm = PatchDataModule(data, 32, 16, 4, crop=[100, 60, 48, 80], seed=int(cfg.seed))
    pdm.setup()
    out = Path(cfg.task.out_dir)
    writer = AffinityWriter(out, "SYNTH-HeLa", pdm.frames, settings, save_every_n_batches=1,
                            frame_settings=frame_records(pdm, data, settings["foreground"]))
    writer._world = 2  # no finalising on the fly, as on several devices
    module = InpaintAffModule(inpainter, engine)
    for i, batch in enumerate(pdm.predict_dataloader()):
        if i == 1:
            break
        writer.write_on_batch_end(None, module, module.predict_step(batch, i), None, batch, i)
    partials = list(partial_dir(out, "SYNTH-HeLa").glob("*.npz"))
    assert len(partials) == 1
    # Sums stored as small integers, compressed: far below the 6.3 MB of float32 + int32 sums.
    assert partials[0].stat().st_size < 200_000
    with caplog.at_level("INFO", logger="inpaintaff.tasks.inpaintaff"):
        result = run(cfg)
    assert "4 patches of 1 frame(s) to process" in caplog.text  # only the rest
    assert result["totals"]["patches"] == 8  # stats include the earlier run's patches
    aff, valid, _ = read_affinities(aff_path(out, "SYNTH-HeLa", "02", 0))
    exp_aff, exp_valid = _expected(cfg, data)
    np.testing.assert_array_equal(valid, exp_valid)
    np.testing.assert_array_equal(aff, exp_aff)
    # Both runs collected sample patches; the samples file keeps n_hierarchy_patches of them.
    with np.load(aff_path(out, "SYNTH-HeLa", "02", 0).with_name("aff000_patches.npz")) as z:
        assert len(z["image"]) == len(z["pos"]) == cfg.task.n_hierarchy_patches == 4


def test_patch_larger_than_the_image_is_an_input_error(compose) -> None:
    cfg = compose("predict", [*QUICK, "task.crop=[0,0,20,100]"])
    with pytest.raises(InputError, match=r"t000\.tif.*smaller than the patch size"):
        run(cfg)


def test_fixed_compile_needs_one_padded_batch_size(compose) -> None:
    for bad in (["task.compile=fixed"], ["task.compile=fixed", "task.engine.chunk=16"],
                ["task.compile=fixed", "task.engine.pad_chunks=true"]):
        with pytest.raises(ValueError, match="task.compile=fixed .*task.engine.chunk"):
            run(compose("predict", [*QUICK, *bad]))
    with pytest.raises(ValueError, match="task.compile must be"):
        run(compose("predict", [*QUICK, "task.compile=always"]))


def test_crop_outside_the_frame_is_an_input_error(compose) -> None:
    cfg = compose("predict", [*QUICK, "task.crop=[240,0,64,64]"])
    with pytest.raises(InputError, match="exceeds the frame"):
        run(cfg)


def test_missing_or_incompatible_checkpoint_is_an_input_error(compose, tmp_path: Path) -> None:
    cfg = compose("predict", [*QUICK, "task.inpainter=net", f"ckpt={tmp_path / 'nope.ckpt'}"])
    with pytest.raises(InputError, match="nope.ckpt.*not found"):
        run(cfg)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="garbage.ckpt.*not a compatible"):
        load_net_inpainter(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"head.weight": torch.zeros(3)}, "hyper_parameters": {"n_classes": 3},
                "pytorch-lightning_version": "2.6.0"}, other)
    with pytest.raises(InputError, match="other.ckpt.*not a compatible"):
        load_net_inpainter(other)
    with pytest.raises(InputError, match="needs a checkpoint: set ckpt=<path to an InpaintingModule .ckpt>"):
        load_net_inpainter(None)


def test_net_inpainter_from_a_real_checkpoint(tmp_path: Path) -> None:
    from inpaintaff.modules.inpainting import InpaintingModule

    module = InpaintingModule(widths=[4, 8], kernel_sizes=[3, 3], feature_extractor="none")
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": "2.6.0"}, path)
    inp = load_net_inpainter(path)
    image = torch.rand(3, 1, 32, 32)
    known = (torch.rand(3, 1, 32, 32) > 0.5).float()
    assert inp(image, known).shape == image.shape
    res = SplitEngine(inp, iterations=2, d0=2, max_depth=1).run(image, [0, 1, 2])
    assert res.leaf_ids.shape == (3, 32, 32) and res.forward_passes >= 1


def test_nan_frame_is_an_input_error(tmp_path: Path) -> None:
    seq = tmp_path / "DS" / "01"
    seq.mkdir(parents=True)
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    img[5, 5] = np.nan
    tifffile.imwrite(seq / "t000.tif", img)
    data = CTCDataModule(tmp_path, "DS", splits={"predict": [{"seq": "01", "frames": [0]}]})
    with pytest.raises(InputError, match=r"t000\.tif.*NaN"):
        PatchDataModule(data, 32, 16).setup()


def test_foreground_gt_skips_empty_patches(compose) -> None:
    cfg = compose("predict", QUICK)
    data = CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    data.prepare_data()
    all_p = PatchDataModule(data, 32, 16, crop=None)
    all_p.setup()
    fg = PatchDataModule(data, 32, 16, crop=None, foreground="gt")
    fg.setup()
    labels = data.load_labels(data.frames("predict")[0])
    info = fg.frames[0]
    assert len(info.todo) < len(all_p.frames[0].todo)
    for pid in set(all_p.frames[0].todo) - set(info.todo):
        y, x = info.positions[pid]
        assert not labels[y : y + 32, x : x + 32].any()


def test_shared_hela_crop(compose, shared_root: Path) -> None:
    cfg = compose("predict", [*QUICK, "data=shared_hela", f"data.root={shared_root}", "task.crop=[300,500,48,64]"])
    result = run(cfg)
    aff, valid, _ = read_affinities(result["frames"][0]["path"])
    assert aff.shape == (12, 700, 1100)
    assert valid[:, 300:348, 500:564].any() and valid.sum() < valid.size / 100


def _skipped(data, spec) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(kept, skipped) patch positions of the first predict frame under the skip ``spec``."""
    pdm = PatchDataModule(data, 32, 16, crop=None, foreground=spec)
    pdm.setup()
    info = pdm.frames[0]
    kept = [info.positions[i] for i in info.todo]
    return kept, [p for p in info.positions if p not in kept]


def test_foreground_from_intensity_and_from_probability_files_skips_patches(compose, tmp_path: Path) -> None:
    cfg = compose("predict", QUICK)
    data = CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    data.prepare_data()
    ref = data.frames("predict")[0]
    image = data.load_image(ref)
    kept, skipped = _skipped(data, {"source": "intensity", "threshold": 0.4})
    assert kept and skipped
    assert all((image[y : y + 32, x : x + 32] <= 0.4).all() for y, x in skipped)
    assert all((image[y : y + 32, x : x + 32] > 0.4).any() for y, x in kept)
    # FGNET-style probabilities: only a square in one corner is foreground.
    prob = np.zeros(image.shape, np.float32)
    prob[:20, :20] = 0.9
    path = tmp_path / "fg" / data.dataset / f"{ref.seq}_FG" / f"fg{ref.frame:03d}.tif"
    path.parent.mkdir(parents=True)
    tifffile.imwrite(path, prob)
    kept, _ = _skipped(data, {"source": "dir", "dir": str(tmp_path / "fg"), "min_pixels": 1})
    assert sorted(kept) == [(0, 0), (0, 16), (16, 0), (16, 16)]  # the patches that reach the square
    with pytest.raises(InputError, match=r"nothing/.*fg000\.tif: file not found"):
        _skipped(data, {"source": "dir", "dir": str(tmp_path / "nothing")})
    # A list of sources keeps the union: the square's patches and the bright ones.
    bright, _ = _skipped(data, {"source": "intensity", "threshold": 0.4})
    both, _ = _skipped(data, {"source": ["dir", "intensity"], "dir": str(tmp_path / "fg"), "threshold": 0.4})
    assert set(both) == set(bright) | {(0, 0), (0, 16), (16, 0), (16, 16)}
    assert len(both) < len(_skipped(data, None)[0])


def test_finished_frames_made_with_other_settings_are_an_error(compose) -> None:
    quick = [*QUICK, "task.pictures=false"]
    cfg = compose("predict", quick)
    run(cfg)
    path = aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    mtime = path.stat().st_mtime_ns
    changes = {"task.stride=8": "stride", "task.crop=[100,60,48,64]": "crop",
               "task.engine.iterations=5": "engine.iterations", "task.gaussian_sigma=3.0": "gaussian_sigma"}
    for change, key in changes.items():
        with pytest.raises(InputError, match=rf"aff000\.tif: .*{key}.*task\.out_dir.*task\.overwrite=true"):
            run(compose("predict", [*quick, change]))
    assert path.stat().st_mtime_ns == mtime
    # Batching knobs change speed, not the affinities: finished frames count as done.
    run(compose("predict", [*quick, "task.engine.max_regions=3", "task.engine.chunk=5", "task.batch_size=2"]))
    assert path.stat().st_mtime_ns == mtime
    result = run(compose("predict", [*quick, "task.stride=8", "task.overwrite=true"]))
    assert result["frames"][0]["n_patches"] == 3 * 7
    saved = json.loads((Path(cfg.paths.output_dir) / "inpaintaff_result.json").read_text())
    assert saved["task"]["stride"] == 8 and saved["totals"]["patches"] == 21


def test_ctrl_c_saves_the_finished_batches(compose, monkeypatch, caplog) -> None:
    cfg = compose("predict", [*QUICK, "task.pictures=false"])
    assert cfg.task.save_every_n_batches == 20
    predict_step = InpaintAffModule.predict_step

    def interrupted(self, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 1:
            raise KeyboardInterrupt
        return predict_step(self, batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(InpaintAffModule, "predict_step", interrupted)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown after Ctrl-C
            run(cfg)
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores further Ctrl-C from then on
    out = Path(cfg.task.out_dir)
    (partial,) = partial_dir(out, "SYNTH-HeLa").glob("*.npz")
    with np.load(partial) as z:
        assert len(z["done"]) == 4  # the first batch
    monkeypatch.setattr(InpaintAffModule, "predict_step", predict_step)
    with caplog.at_level("INFO", logger="inpaintaff.tasks.inpaintaff"):
        result = run(cfg)
    assert "4 patches of 1 frame(s) to process" in caplog.text
    assert result["totals"]["patches"] == 8


@pytest.mark.parametrize("size", [0, 16, 27])
def test_patch_size_below_the_largest_offset_is_rejected_up_front(compose, size) -> None:
    with pytest.raises(ValueError, match=rf"task\.patch_size must be at least 28.*offset.*27.*got {size}"):
        run(compose("predict", [*QUICK, f"task.patch_size={size}"]))


def test_bad_and_orphaned_partial_files(compose) -> None:
    cfg = compose("predict", [*QUICK, "task.pictures=false"])
    folder = partial_dir(cfg.task.out_dir, "SYNTH-HeLa")
    folder.mkdir(parents=True)
    corrupt = folder / "02_t000__r0-corrupt.npz"
    corrupt.write_bytes(b"not an npz file")
    with pytest.raises(InputError, match=rf"{re.escape(str(corrupt))}: .*delete the folder {re.escape(str(folder))}"):
        run(cfg)
    corrupt.unlink()
    foreign = folder / "02_t000__r0-foreign.npz"
    np.savez(foreign, something=np.zeros(3))
    with pytest.raises(InputError, match=rf"{re.escape(str(foreign))}: .*delete the folder {re.escape(str(folder))}"):
        run(cfg)
    # task.overwrite=true starts afresh: the frame's partial files are deleted, not resumed.
    overwrite = compose("predict", [*QUICK, "task.pictures=false", "task.overwrite=true"])
    run(overwrite)
    assert not foreign.exists() and aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0).is_file()
    aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0).unlink()
    # What a run killed while saving leaves behind (atomic_path's temporary name).
    orphan = folder / ".02_t000__r0-abc.npz.x1y2z3.tmp.npz"
    orphan.write_bytes(b"half written")
    run(cfg)
    assert aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0).is_file()
    assert not orphan.exists()


def test_several_hierarchies_per_patch_are_averaged(compose) -> None:
    quick = [*QUICK, "task.pictures=false"]
    one = run(compose("predict", quick))
    aff1, valid1, _ = read_affinities(one["frames"][0]["path"])
    two = run(compose("predict", [*quick, "task.hierarchies_per_patch=2", "task.overwrite=true"]))
    aff2, valid2, _ = read_affinities(two["frames"][0]["path"])
    assert two["frames"][0]["n_patches"] == 2 * one["frames"][0]["n_patches"]
    assert np.array_equal(valid1, valid2)
    # The first hierarchy of each patch is the single run's; the second, from its own seed, differs.
    second = 2 * aff2[valid2] - aff1[valid1]
    assert second.min() >= -1e-5 and second.max() <= 1 + 1e-5
    assert not np.allclose(second, aff1[valid1])
    with pytest.raises(InputError, match="hierarchies_per_patch"):
        run(compose("predict", quick))  # written with 2 per patch: another setting


def test_settings_of_older_files_compare_without_batching_knobs() -> None:
    from inpaintaff.tasks.inpaintaff.writer import settings_diff

    now = {"stride": 16, "engine": {"iterations": 20, "precision": "32"}, "hierarchies_per_patch": 1}
    older = {"stride": 16, "engine": {"iterations": 20, "precision": "32", "max_regions": 256, "chunk": None}}
    assert settings_diff(older, now) == []  # batching knobs and a later setting at its old value
    assert settings_diff({**older, "hierarchies_per_patch": 2}, now) == [
        "hierarchies_per_patch: 2 in the file, 1 now"]
    assert settings_diff({**older, "engine": {**older["engine"], "iterations": 12}}, now) == [
        "engine.iterations: 12 in the file, 20 now"]


def _interrupt_at(monkeypatch, batch: int) -> None:
    """The next run stops with Ctrl-C at ``batch`` (its earlier batches done)."""
    predict_step = InpaintAffModule.predict_step

    def interrupted(self, b, batch_idx, dataloader_idx=0):
        if batch_idx == batch:
            raise KeyboardInterrupt
        return predict_step(self, b, batch_idx, dataloader_idx)

    monkeypatch.setattr(InpaintAffModule, "predict_step", interrupted)


def _run_interrupted(cfg, monkeypatch, batch: int = 1) -> None:
    original = InpaintAffModule.predict_step
    _interrupt_at(monkeypatch, batch)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            run(cfg)
    finally:
        signal.signal(signal.SIGINT, sigint)
        monkeypatch.setattr(InpaintAffModule, "predict_step", original)


def test_interrupted_overwrite_run_resumes(compose, monkeypatch, caplog) -> None:
    """An interrupted task.overwrite=true run of other settings resumes, rerun with or without overwrite:
    overwrite deletes the old written frames up front and keeps partial sums of the new settings."""
    quick = [*QUICK, "task.pictures=false"]
    run(compose("predict", quick))  # stride 16, written
    path = aff_path(compose("predict", quick).task.out_dir, "SYNTH-HeLa", "02", 0)
    stride8 = [*quick, "task.stride=8"]
    _run_interrupted(compose("predict", [*stride8, "task.overwrite=true"]), monkeypatch)
    assert not path.exists()  # the stride-16 frame is gone: a rerun finds only the new partial sums
    # Overwrite again: the partial sums of these settings are resumed, not deleted.
    _run_interrupted(compose("predict", [*stride8, "task.overwrite=true"]), monkeypatch)
    with caplog.at_level("INFO", logger="inpaintaff.tasks.inpaintaff"):
        result = run(compose("predict", stride8))  # no overwrite: resumes
    assert "13 patches of 1 frame(s) to process" in caplog.text  # 21 - 2 x 4 done before
    assert result["totals"]["patches"] == 21 and result["frames"][0]["n_patches"] == 21


def _tiny_inpainting_ckpt(path: Path, seed: int) -> Path:
    from inpaintaff.modules.inpainting import InpaintingModule

    torch.manual_seed(seed)
    module = InpaintingModule(widths=[4, 8], kernel_sizes=[3, 3], feature_extractor="none")
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": "2.6.0"}, path)
    return path


def test_replaced_checkpoint_is_not_reused(compose, tmp_path: Path) -> None:
    """Continued training rewrites the checkpoint under the same path: its content is recorded and compared."""
    ckpt = _tiny_inpainting_ckpt(tmp_path / "last.ckpt", 0)
    quick = [*QUICK, "task.pictures=false", "task.inpainter=net", f"ckpt={ckpt}", "task.engine.iterations=2"]
    cfg = compose("predict", quick)
    run(cfg)
    path = aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    from inpaintaff.io.affinities import read_affinity_metadata
    from inpaintaff.io.records import content_sha1

    assert read_affinity_metadata(path)["ckpt_sha1"] == content_sha1(ckpt)
    mtime = path.stat().st_mtime_ns
    run(cfg)  # the same checkpoint: skipped
    assert path.stat().st_mtime_ns == mtime
    _tiny_inpainting_ckpt(ckpt, 1)  # trained on: other weights, same path
    with pytest.raises(InputError, match=r"aff000\.tif: .*ckpt_sha1.*task\.overwrite=true"):
        run(compose("predict", quick))
    assert path.stat().st_mtime_ns == mtime


def test_normalisation_and_input_content_are_compared(compose, tmp_path: Path, synthetic_root: Path) -> None:
    """Another data.normalize, or another data.root whose frame of the same name differs, is not reused;
    an identical copy elsewhere is (paths do not count)."""
    import shutil

    quick = [*QUICK, "task.pictures=false"]
    cfg = compose("predict", quick)
    run(cfg)
    path = aff_path(cfg.task.out_dir, "SYNTH-HeLa", "02", 0)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(InputError, match=r"aff000\.tif: .*normalize.*task\.overwrite=true"):
        run(compose("predict", [*quick, "data.normalize.high=99.0"]))
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root / "SYNTH-HeLa", copy / "SYNTH-HeLa")
    run(compose("predict", [*quick, f"data.root={copy}"]))  # the same bytes: kept
    assert path.stat().st_mtime_ns == mtime
    raw = copy / "SYNTH-HeLa" / "02" / "t000.tif"
    tifffile.imwrite(raw, tifffile.imread(raw)[::-1].copy())
    with pytest.raises(InputError, match=r"aff000\.tif: .*input_sha1.*task\.overwrite=true"):
        run(compose("predict", [*quick, f"data.root={copy}"]))
    assert path.stat().st_mtime_ns == mtime


def test_region_rules_leave_the_foregrounds_affinities_unchanged(compose) -> None:
    """engine.region_min_fg in the task: regions without foreground stay unsplit, which changes no pair
    inside the foreground, and saves images; without a foreground source it is a clear error."""
    from inpaintaff.offsets import OFFSETS
    from inpaintaff.segment.foreground import true_foreground

    quick = [*QUICK, "task.pictures=false", "task.foreground.source=truefg", "task.engine.max_depth=4"]
    plain = run(compose("predict", quick))
    ruled = run(compose("predict", [*quick, "task.engine.region_min_fg=1", "task.overwrite=true"]))
    assert ruled["totals"]["no_foreground"] > 0
    assert ruled["conditionals_per_patch"] < plain["conditionals_per_patch"]
    aff0, valid0, _ = read_affinities(plain["frames"][0]["path"])
    aff1, valid1, _ = read_affinities(ruled["frames"][0]["path"])
    assert np.array_equal(valid0, valid1)
    cfg = compose("predict", quick)
    data = CTCDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    fg = true_foreground(data.load_labels(data.frames("predict")[0]))
    h, w = fg.shape
    inside = 0
    for c, (dy, dx) in enumerate(OFFSETS):
        both = np.zeros_like(fg)
        ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
        yt, xt = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
        both[ys, xs] = fg[ys, xs] & fg[yt, xt]
        both &= valid0[c]
        inside += int(both.sum())
        np.testing.assert_allclose(aff1[c][both], aff0[c][both], atol=1e-6)
    assert inside > 0
    with pytest.raises(ValueError, match="task.foreground.source"):
        run(compose("predict", [*QUICK, "task.engine.region_min_fg=1", "task.overwrite=true"]))


def test_the_planes_of_a_stack_file_are_frames_of_their_own(compose, tmp_path: Path) -> None:
    """A time-lapse file (ImageJ axes TYX), and its planes as single files in another folder: the
    engine writes one affinity file per plane, named <stem>/pNNNN, equal to the single file's (each
    patch's seed follows the frame's place in the folder, the same in both)."""
    from inpaintaff.data.synthetic import synthetic_frame

    stack_dir, single_dir = tmp_path / "stack_images", tmp_path / "single_images"
    stack_dir.mkdir()
    single_dir.mkdir()
    planes = [synthetic_frame((64, 96), seed=s, radius=12.0, density=0.3)[0] for s in (1, 2)]
    tifffile.imwrite(stack_dir / "movie.tif", np.stack(planes), imagej=True, metadata={"axes": "TYX"})
    for i, raw in enumerate(planes):
        tifffile.imwrite(single_dir / f"t{i}.tif", raw)
    quick = [o for o in QUICK if not o.startswith("task.crop=")]
    for folder in (stack_dir, single_dir):
        run(compose("predict", [*quick, "data=folder", f"data.images={folder}", "task.pictures=false"]))
    out = Path(compose("predict", quick).task.out_dir)
    for i in range(2):
        aff, valid, _ = read_affinities(aff_path(out, "stack_images", "", 0, f"movie/p{i:04d}"))
        single, single_valid, _ = read_affinities(aff_path(out, "single_images", "", 0, f"t{i}"))
        assert valid.any()
        np.testing.assert_array_equal(valid, single_valid)
        np.testing.assert_array_equal(aff, single)
