"""``task=inpaintaff``: affinities of the predict frames from the IGM split engine.

Frames -> sliding patches (``PatchDataModule``) -> engine (``InpaintAffModule.predict_step``, on
any number of devices) -> per-frame sums (``AffinityWriter``) -> ``<out_dir>/<dataset>/<seq>_AFF/
affNNN.tif``; pictures in ``<out_dir>/pictures`` and TensorBoard; a summary in
``<paths.output_dir>/inpaintaff_result.json``. Re-running with the same ``task.out_dir`` skips
written frames and resumes partly done ones (frames and partial sums of other settings, another
checkpoint content, normalisation or input file are an error); an interrupted run keeps the batches
it finished, also one with ``task.overwrite=true``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import MISSING, DictConfig
from torch import nn

from inpaintaff.data.scaled import ScaledFrames
from inpaintaff.igm.inpainters import COMPILE_MODES, GaussianInpainter, Inpainter
from inpaintaff.igm.split import EngineConfig
from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata
from inpaintaff.io.files import write_json
from inpaintaff.io.records import content_sha1, file_sha1, source_settings
from inpaintaff.modules.net_inpainter import load_net_inpainter
from inpaintaff.offsets import MAX_OFFSET
from inpaintaff.segment.alpha import seed_from_checkpoint
from inpaintaff.segment.scale import ScaleSpec
from inpaintaff.tasks.checkpoints import checkpoint_diameter
from inpaintaff.tasks.inpaintaff.module import InpaintAffModule
from inpaintaff.tasks.inpaintaff.patches import PatchDataModule, foreground_skip_spec
from inpaintaff.tasks.inpaintaff.writer import AffinityWriter, samples_path, scan_done
from inpaintaff.utils.config import check_threads, typed
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.instantiate import build_trainer
from inpaintaff.utils.locks import folder_lock, launching_process
from inpaintaff.utils.plugins import instantiate_target

log = logging.getLogger(__name__)


@dataclass
class InpaintAffSettings:
    """``task=inpaintaff`` (defaults in ``conf/task/inpaintaff.yaml``; ``engine``: :class:`EngineConfig`)."""

    name: str = MISSING
    inpainter: Any = MISSING  # net | gaussian | auto, or {_target_: a class of yours, its parameters}
    gaussian_sigma: float = MISSING
    analytic_diameter: float | None = MISSING  # nucleus size (px) frames are resized to for the analytic inpainter
    patch_size: int = MISSING
    stride: int = MISSING
    hierarchies_per_patch: int = MISSING
    batch_size: int = MISSING
    crop: list[int] | None = MISSING
    window: int | None = MISSING
    foreground: Any = MISSING  # null, a source name, or {source, dir, pattern, threshold, min_pixels}
    compile: Any = MISSING  # false | true (= dynamic) | dynamic | fixed
    engine: dict[str, Any] = MISSING
    out_dir: str = MISSING
    overwrite: bool = MISSING
    save_every_n_batches: int = MISSING
    num_workers: int = MISSING
    torch_threads: Any = MISSING  # null | auto | N (engine_threads)
    pictures: bool = MISSING
    n_hierarchy_patches: int = MISSING
    scale: ScaleSpec = field(default_factory=ScaleSpec)


def build_inpainter(spec: str | Mapping[str, Any], ckpt: str | None, gaussian_sigma: float,
                    compile: bool | str = False) -> tuple[nn.Module, dict]:
    """The inpainter ``spec`` names (``auto``: the net if ``ckpt`` is set; a mapping with ``_target_``:
    that class built with the mapping's parameters) and a description of it (part of the resume
    settings)."""
    if isinstance(spec, Mapping):
        return instantiate_inpainter(spec)
    kind = spec
    if kind == "auto":
        kind = "net" if ckpt else "gaussian"
        if kind == "gaussian":
            log.warning("no ckpt given: using the analytic Gaussian inpainter (set ckpt=... for the net)")
    if kind == "net":
        inpainter = load_net_inpainter(ckpt, "cpu", compile=compile)
        # The content counts: training on rewrites last.ckpt under the same path.
        return inpainter, {"inpainter": "net", "ckpt": str(Path(ckpt).resolve()), "ckpt_sha1": content_sha1(ckpt)}
    if kind == "gaussian":
        sigma = float(gaussian_sigma)
        return GaussianInpainter(sigma), {"inpainter": "gaussian", "gaussian_sigma": sigma}
    raise ValueError(f"task.inpainter must be net, gaussian, auto or a mapping with _target_, got {kind!r}")


def instantiate_inpainter(spec: Mapping[str, Any]) -> tuple[nn.Module, dict]:
    """An inpainter of any class, from ``{_target_: module.Class, param: value, ...}`` (the plug point:
    one class and one YAML file; see docs/layout.md). The class is a ``torch.nn.Module`` whose
    ``forward(image, known)`` follows :class:`inpaintaff.igm.inpainters.Inpainter`; an attribute
    ``diameter`` (px) makes frames be resized to its nucleus size. Its description holds the target,
    the parameters and the SHA-1 of every parameter that names a file (a checkpoint's content counts)."""
    spec = dict(spec)
    contract = ("an inpainter is a torch.nn.Module with forward(image, known) -> image (Lightning moves it to "
                "the device)")
    inpainter = instantiate_target(spec, "task.inpainter", Inpainter, contract)
    if not isinstance(inpainter, nn.Module):
        raise TypeError(f"task.inpainter: {spec['_target_']} built a {type(inpainter).__name__}; {contract}")
    params = {k: v for k, v in spec.items() if k != "_target_"}
    desc: dict[str, Any] = {"inpainter": spec["_target_"], "inpainter_params": params}
    for key, value in params.items():
        if isinstance(value, str) and Path(value).is_file():
            desc[f"{key}_sha1"] = file_sha1(value)
    return inpainter, desc


def engine_threads(setting: int | str | None, inpainter: str) -> int | None:
    """Torch's CPU threads for the run: ``setting`` if a number, None (torch's default) if null;
    ``auto``: 1 for the analytic inpainter, whose many small tensor operations each wake the other
    threads (2.1-2.5x faster on one thread on our idle 2 cores; about even on busy ones), torch's default
    for a net, whose convolutions use them (1.4x slower on one thread); benchmarks/omp_wait_policy.py."""
    if setting == "auto":
        return 1 if inpainter == "gaussian" else None
    return None if setting is None else int(setting)


def inpainter_diameter(inpainter: nn.Module, desc: dict, analytic_diameter: float | None) -> float | None:
    """The nucleus size (px) frames are resized to: the net checkpoint's, a plugged-in inpainter's own
    ``diameter``, else ``task.analytic_diameter`` (None: frames as they are)."""
    if desc["inpainter"] == "net":
        return checkpoint_diameter(desc["ckpt"])
    own = getattr(inpainter, "diameter", None)
    return float(own) if own is not None else analytic_diameter


def frame_records(pdm: PatchDataModule, data: Any, foreground: dict) -> dict[str, dict]:
    """Each frame's own record, by frame key: the SHA-1 of its input file (and of its labels when
    they decide the skipped patches)."""
    sources = foreground["source"] if isinstance(foreground["source"], list) else [foreground["source"]]
    out = {}
    for info, ref in zip(pdm.frames, data.frames("predict")):
        rec = {"input_sha1": content_sha1(ref.raw_path)}
        if "truefg" in sources and ref.gt_path is not None:
            rec["labels_sha1"] = content_sha1(ref.gt_path)
        out[info.key] = rec
    return out


def check_task(task: InpaintAffSettings) -> None:
    """Reject sizes that would only fail inside prediction, saying why."""
    if task.patch_size <= MAX_OFFSET:
        raise ValueError(f"task.patch_size must be at least {MAX_OFFSET + 1}: the largest affinity offset is "
                         f"{MAX_OFFSET}, and a patch must hold pairs of every offset; got {task.patch_size}")
    for key in ("stride", "batch_size", "hierarchies_per_patch"):
        if getattr(task, key) < 1:
            raise ValueError(f"task.{key} must be >= 1, got {getattr(task, key)}")
    if task.save_every_n_batches < 0:
        raise ValueError(f"task.save_every_n_batches must be >= 0 (0: save only between frames), got "
                         f"{task.save_every_n_batches}")
    if task.torch_threads != "auto":
        check_threads(task.torch_threads)
    if task.compile not in COMPILE_MODES:
        raise ValueError(f"task.compile must be false, true, dynamic or fixed, got {task.compile!r}")
    chunk = task.engine.get("chunk")
    if task.compile == "fixed" and (chunk in (None, "auto") or not task.engine.get("pad_chunks")):
        raise ValueError("task.compile=fixed compiles the net for one batch size: set task.engine.chunk to a number "
                         f"(got {chunk!r}) and task.engine.pad_chunks=true")


def run(cfg: DictConfig) -> dict:
    # One run at a time per out_dir: two would each count the other's patches (inpaintaff.utils.locks).
    # The thread count is the run's own: a caller in the same process (a table, a test) keeps its.
    threads = torch.get_num_threads()
    try:
        with folder_lock(cfg.task.out_dir, "task=inpaintaff", hold=launching_process()):
            return _run(cfg)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: DictConfig) -> dict:
    task = typed(cfg.task, InpaintAffSettings)
    check_task(task)
    pl.seed_everything(int(cfg.seed), workers=True)
    data = hydra.utils.instantiate(cfg.data)
    data.prepare_data()
    out_dir = Path(task.out_dir)
    engine = EngineConfig(**task.engine)
    inpainter, desc = build_inpainter(task.inpainter, cfg.get("ckpt"), task.gaussian_sigma, task.compile)
    threads = engine_threads(task.torch_threads, desc["inpainter"])
    if threads:
        torch.set_num_threads(threads)
    # The net's patches and the offsets are in the net's pixels: frames are resized to its nucleus size.
    model_diameter = inpainter_diameter(inpainter, desc, task.analytic_diameter)
    data = ScaledFrames(data, model_diameter, task.scale)
    settings = {
        "patch_size": task.patch_size, "stride": task.stride, "crop": task.crop, "window": task.window,
        "foreground": foreground_skip_spec(task.foreground), "seed": int(cfg.seed),
        "engine": engine.result_settings(), "scale": data.record(), **source_settings(data.source), **desc,
    }
    settings["hierarchies_per_patch"] = task.hierarchies_per_patch  # files written before it existed count as 1

    pdm = PatchDataModule(
        data, task.patch_size, task.stride, task.batch_size, crop=task.crop, window=task.window,
        foreground=task.foreground,
        seed=int(cfg.seed), num_workers=task.num_workers, repeats=task.hierarchies_per_patch,
        patch_foreground=engine.uses_foreground,
    )
    pdm.setup()
    records = frame_records(pdm, data, settings["foreground"])
    written, done = scan_done(out_dir, data.dataset, pdm.frames, settings, task.overwrite, records)
    pdm.resume(written, done)
    for key in sorted(written):
        log.info("%s already written in %s: skipped", key, out_dir)
    writer = AffinityWriter(
        out_dir, data.dataset, pdm.frames, settings, save_every_n_batches=task.save_every_n_batches,
        n_samples=task.n_hierarchy_patches, metadata={"dataset": data.dataset},
        frame_metadata={info.key: data.metadata(ref) for info, ref in zip(pdm.frames, data.frames("predict"))},
        frame_settings=records,
    )
    trainer = build_trainer(cfg, callbacks=[writer])
    if trainer.global_rank == 0 and desc["inpainter"] == "net":
        seeded = seed_from_checkpoint(desc["ckpt"], out_dir)
        if seeded:
            log.info("the checkpoint's measured alpha copied to %s (task=segment task.alpha=auto reads it)", seeded)
    start = time.perf_counter()
    if pdm.n_todo:
        log.info("%d patches of %d frame(s) to process", pdm.n_todo, len(pdm.frames))
        trainer.predict(InpaintAffModule(inpainter, engine), datamodule=pdm, return_predictions=False)
    elif trainer.global_rank == 0:
        writer.finalize_pending()  # everything was done before: only merging is left
    wall = time.perf_counter() - start
    if trainer.global_rank != 0:
        return {}
    return summarize(cfg, task, data.dataset, out_dir, pdm, trainer, wall)


def summarize(cfg: DictConfig, task: InpaintAffSettings, dataset: str, out_dir: Path, pdm: PatchDataModule,
              trainer: pl.Trainer, wall: float) -> dict:
    """Collect per-frame statistics, draw pictures, write inpaintaff_result.json."""
    frames, totals = [], {}
    for info in pdm.frames:
        path = aff_path(out_dir, dataset, info.seq, info.frame, info.stem)
        if not path.is_file():
            raise InputError(path, "affinities of this frame were not written (see the log)")
        meta = read_affinity_metadata(path)
        stats = meta.get("stats", {})
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v
        entry = {"key": info.key, "path": str(path), "n_patches": meta.get("n_patches"), "stats": stats}
        if task.pictures:
            entry.update(_pictures(pdm, info, path, out_dir, dataset, trainer))
        frames.append(entry)
    n = max(totals.get("patches", 0.0), 1.0)
    result = {
        "out_dir": str(out_dir), "frames": frames, "totals": totals, "wall_seconds": wall,
        "forward_passes_per_patch": totals.get("forward_passes", 0.0) / n,
        "conditionals_per_patch": totals.get("conditionals", 0.0) / n,
        "splits_per_patch": totals.get("splits", 0.0) / n, "leaves_per_patch": totals.get("leaves", 0.0) / n,
        "patches_per_second": totals.get("patches", 0.0) / wall if wall > 0 and totals.get("patches") else None,
        "task": asdict(task),
    }
    write_json(Path(cfg.paths.output_dir) / "inpaintaff_result.json", result)
    log.info("affinities in %s; %.1f forward passes, %.1f splits, %.1f leaves per patch", out_dir,
             result["forward_passes_per_patch"], result["splits_per_patch"], result["leaves_per_patch"])
    return result


def _pictures(pdm: PatchDataModule, info, path: Path, out_dir: Path, dataset: str, trainer: pl.Trainer) -> dict:
    from inpaintaff.viz.affinity import save_affinity_png, save_hierarchy_png
    from inpaintaff.viz.tensorboard import log_to_loggers

    stem = info.file_stem
    pics = out_dir / "pictures"
    drawn = [pics / f"{stem}_affinities.png", pics / f"{stem}_hierarchy.png"]
    if drawn[0].is_file() and drawn[0].stat().st_mtime >= path.stat().st_mtime:
        # Drawn from these very affinities by an earlier run (a resumed run redraws nothing).
        return {f"{kind}_png": str(p) for kind, p in zip(("affinity", "hierarchy"), drawn) if p.is_file()}
    aff, valid, _ = read_affinities(path)
    y0, x0 = info.origin
    h, w = info.shape
    image = pdm.images[info.index]
    sl = (slice(None), slice(y0, y0 + h), slice(x0, x0 + w))
    out = {"affinity_png": str(save_affinity_png(pics / f"{stem}_affinities.png", image, aff[sl], valid[sl],
                                                 title=f"{dataset} {info.key}"))}
    log_to_loggers(trainer.loggers, 0, images={f"inpaintaff/affinities/{stem}": out["affinity_png"]})
    sp = samples_path(out_dir, dataset, info)
    if sp.is_file():
        with np.load(sp) as z:
            if len(z["image"]):
                out["hierarchy_png"] = str(save_hierarchy_png(pics / f"{stem}_hierarchy.png", z["image"],
                                                              z["leaf_ids"], z["pos"]))
                log_to_loggers(trainer.loggers, 0, images={f"inpaintaff/hierarchy/{stem}": out["hierarchy_png"]})
    return out
