"""``task=segment_folder``: instance masks for every image of a folder (or a split), one pass each.

    python predict.py task=segment_folder data=folder data.images=DIR [data.masks=DIR] [data.diameter=D]
    inpaintaff segment DIR                       (the same, as an installed command)

Per image: percentile normalisation, the nucleus size (given or estimated) and the resizing to
the model's, foreground (FGNET), one-pass affinities (the DISTILL student), mutex watershed with
the α and fragment size stored beside the checkpoint, holes filled, labels back at the input's
shape. Writes ``<out>/masks/<name>.tif``, ``<out>/overlays/<name>.png``, ``<out>/records/<name>.json``
(what shaped the mask, and its rows), and at the end ``images.csv`` (one row per image: size,
diameter, factor, objects, SEG with masks), ``objects.csv`` (area, centroid, mean intensity per
object) and ``segment_folder_result.json``. Images stream through a Lightning predict loop, so
``trainer.devices=N`` / ``trainer.num_nodes`` split them; finished images whose record matches
are skipped.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import MISSING, DictConfig, open_dict
from torch.utils.data import DataLoader, Dataset

from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.data.sources import FrameRef, FrameSource
from inpaintaff.io.ctc import write_labels
from inpaintaff.io.files import write_json
from inpaintaff.io.records import differences, make_record
from inpaintaff.io.results import write_csv
from inpaintaff.metrics.ctc import seg_from_overlap
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.measure import measure_objects
from inpaintaff.segment.scale import ScaleSpec, warn_if_far
from inpaintaff.segmenter import Segmenter
from inpaintaff.utils.config import check_threads, typed
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.instantiate import build_trainer
from inpaintaff.utils.locks import folder_lock, launching_process

log = logging.getLogger(__name__)

RESULT_NAME = "segment_folder_result.json"
IMAGE_COLUMNS = ["image", "file", "plane", "height", "width", "n_objects", "diameter", "diameter_source",
                 "diameter_objects", "diameter_uncertain", "scale_factor", "raw_scale_factor", "model_height",
                 "model_width", "seg", "n_gt", "n_matched", "seg_score_sum", "seconds", "seconds_scale",
                 "seconds_foreground", "seconds_affinities", "seconds_mws"]
OBJECT_COLUMNS = ["image", "plane", "label", "area", "centroid_y", "centroid_x", "mean_intensity"]


@dataclass
class ForegroundSpec:
    source: str = MISSING  # fgnet | intensity | truefg (the masks' foreground; evaluation only)
    ckpt: str | None = MISSING
    threshold: Any = MISSING  # a number, or auto


@dataclass
class SelectSpec:
    enabled: bool = MISSING
    split: str = MISSING
    alphas: list[float] = MISSING
    min_sizes: list[int] = MISSING
    seg_tolerance: float = MISSING
    min_merged: int = MISSING
    thresholds: list[float] = MISSING  # FGNET's, chosen with α ([]: task.foreground.threshold)


@dataclass
class SegmentFolderSettings:
    """``task=segment_folder`` (defaults in ``conf/task/segment_folder.yaml``)."""

    name: str = MISSING
    split: str = MISSING
    out_dir: str = MISSING
    affinities_ckpt: str = MISSING
    foreground: ForegroundSpec = field(default_factory=ForegroundSpec)
    alpha: Any = MISSING  # a number, or auto
    min_size: Any = MISSING  # a number, or auto
    min_area_fraction: float = MISSING
    scale: ScaleSpec = field(default_factory=ScaleSpec)
    select: SelectSpec = field(default_factory=SelectSpec)
    fill_holes: bool = MISSING
    tile: int = MISSING
    halo: int = MISSING
    mws_backend: str = MISSING
    save_affinities: bool = MISSING
    overlays: bool = MISSING
    overwrite: bool = MISSING
    tensorboard_images: int = MISSING
    torch_threads: int | None = MISSING


def build_segmenter(t: SegmentFolderSettings, cfg: DictConfig) -> Segmenter:
    """The task's segmenter (on the CPU; Lightning moves its nets to the device)."""
    norm = cfg.data.get("normalize") or {"low": 1.0, "high": 99.8}
    return Segmenter.from_checkpoints(
        t.affinities_ckpt, t.foreground.ckpt, foreground_source=t.foreground.source, alpha=t.alpha,
        min_size=t.min_size, threshold=t.foreground.threshold, tile=t.tile, halo=t.halo, fill_holes=t.fill_holes,
        scale=t.scale.enabled, tolerance=t.scale.tolerance, min_objects=t.scale.min_objects,
        min_area_fraction=t.min_area_fraction, backend=t.mws_backend, seed=int(cfg.seed),
        normalize=(float(norm["low"]), float(norm["high"])), device="cpu")


class FolderOutputs:
    """Where one image's outputs go, all named by the image's file stem."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def mask(self, name: str) -> Path:
        return self.root / "masks" / f"{name}.tif"

    def overlay(self, name: str) -> Path:
        return self.root / "overlays" / f"{name}.png"

    def affinities(self, name: str) -> Path:
        return self.root / "affinities" / f"{name}.tif"

    def record(self, name: str) -> Path:
        return self.root / "records" / f"{name}.json"

    def read_record(self, name: str) -> dict | None:
        import json

        path = self.record(name)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(path, f"unreadable record ({exc}): delete it to recompute this image") from exc


def _first(batch: list) -> Any:
    return batch[0]


class _Indices(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class SegmentFolderModule(pl.LightningModule):
    """Predict loop over images: each step segments one image and writes its outputs.

    Holds the segmenter's nets as submodules, so Lightning moves them to each process's device;
    a distributed sampler gives every process its own images.
    """

    def __init__(self, segmenter: Segmenter, source: FrameSource, todo: list[tuple[FrameRef, dict]],
                 outputs: FolderOutputs, save_affinities: bool, overlays: bool, warn_factor: float):
        super().__init__()
        self.nets = torch.nn.ModuleList(segmenter.one_pass.nets)
        self.segmenter, self.source, self.todo, self.outputs = segmenter, source, todo, outputs
        self.save_affinities, self.overlays, self.warn_factor = save_affinities, overlays, warn_factor

    def predict_step(self, index: int, batch_idx: int, dataloader_idx: int = 0) -> dict:
        ref, record = self.todo[int(index)]
        self.segmenter.one_pass.device = self.device
        return segment_one(self.segmenter, self.source, ref, record, self.outputs, self.save_affinities, self.overlays,
                    self.warn_factor)


def segment_one(segmenter: Segmenter, source: FrameSource, ref: FrameRef, record: dict, outputs: FolderOutputs,
                save_affinities: bool, overlays: bool, warn_factor: float) -> dict:
    """Segment one image and write its mask, overlay, (affinities) and record; returns its row."""
    t0 = time.perf_counter()
    name = ref.name
    raw = source.load_raw(ref)
    image = percentile_normalize(raw, *segmenter.normalize, source=ref.raw_path)
    gt = source.load_labels(ref) if ref.gt_path is not None else None
    res = segmenter.segment(image, diameter=source.diameter, labels=gt, normalized=True,
                            keep_affinities=save_affinities)
    warn_if_far(name, res.scale, warn_factor)
    row: dict[str, Any] = {"image": name, "file": str(ref.raw_path), "plane": ref.plane,
                           "height": raw.shape[0], "width": raw.shape[1],
                           "n_objects": int(res.labels.max()), **res.scale.as_row(),
                           "model_height": res.model_shape[0], "model_width": res.model_shape[1]}
    if gt is not None:
        seg = seg_from_overlap(overlap(gt, res.labels))
        row.update({"seg": seg.seg, "n_gt": seg.n_gt, "n_matched": seg.n_matched, "seg_score_sum": seg.score_sum})
    objects = [{"image": name, "plane": ref.plane, **o} for o in measure_objects(res.labels, raw)]
    write_labels(outputs.mask(name), res.labels)
    if overlays:
        from inpaintaff.viz.overlays import overlay_rgb, save_rgb_png

        save_rgb_png(outputs.overlay(name), overlay_rgb(image, res.labels, gt)[0])  # errors marked with masks
    if save_affinities and res.affinities is not None:
        from inpaintaff.io.affinities import write_affinities
        from inpaintaff.offsets import inside_pairs

        write_affinities(outputs.affinities(name), res.affinities, inside_pairs(res.model_shape), metadata={
            "source": "segment_folder", "image": name, "scale_factor": res.scale.factor,
            "input_shape": list(raw.shape), "checkpoints": segmenter.checkpoints})
    row["seconds"] = time.perf_counter() - t0
    row.update({f"seconds_{k}": v for k, v in res.seconds.items()})
    write_json(outputs.record(name), {"record": record, "image": row, "objects": objects})
    log.info("%s: %d objects (diameter %s, factor %.2f) in %.2f s", name, row["n_objects"],
             "?" if res.scale.diameter is None else f"{res.scale.diameter:.1f} px", res.scale.factor, row["seconds"])
    return row


def shaping_settings(segmenter: Segmenter, source: FrameSource, cfg: DictConfig) -> dict:
    """Everything besides the input and the checkpoints that shapes a mask."""
    return {**asdict(segmenter.settings), "normalize": list(segmenter.normalize),
            "model_diameter": segmenter.model_diameter, "diameter": source.diameter,
            "channel": cfg.data.get("channel")}


def plan(segmenter: Segmenter, source: FrameSource, refs: list[FrameRef], outputs: FolderOutputs, cfg: DictConfig,
         overwrite: bool) -> tuple[list[tuple[FrameRef, dict]], list[FrameRef]]:
    """(image, record) still to segment, and the images kept from an earlier run.

    A kept image is skipped only when its record equals today's; a changed input file is redone;
    other settings or checkpoints are an error naming the file and each difference (unless
    ``overwrite``).
    """
    settings = shaping_settings(segmenter, source, cfg)
    ckpts = segmenter.checkpoints
    uses_mask = segmenter.settings.foreground == "truefg"
    todo, kept = [], []
    for ref in refs:
        now = make_record(settings, {"image": ref.raw_path, "mask": ref.gt_path if uses_mask else None}, ckpts)
        saved = None if overwrite else outputs.read_record(ref.name)
        if saved is not None and outputs.mask(ref.name).is_file():
            diff = differences(saved.get("record"), now)
            if not diff:
                kept.append(ref)
                continue
            if all(d.startswith("inputs.") for d in diff):
                log.info("%s changed since its mask was made: segmenting it again", ref.raw_path)
            else:
                raise InputError(outputs.record(ref.name), "a result of other settings is kept here ("
                                 + "; ".join(diff[:6]) + "): choose another output folder, or set task.overwrite=true")
        todo.append((ref, now))
    return todo, kept


def summarize(outputs: FolderOutputs, refs: list[FrameRef], out_dir: Path, wall: float, n_done: int,
              segmenter: Segmenter, tensorboard_images: int) -> dict:
    """images.csv, objects.csv, the result JSON and TensorBoard pictures, from every image's record."""
    rows, objects = [], []
    for ref in refs:
        rec = outputs.read_record(ref.name)
        if rec is None:
            raise InputError(outputs.record(ref.name), "this image's result was not written (see the log)")
        rows.append(rec["image"])
        objects += rec["objects"]
    stacks = assemble_stacks(outputs, refs)
    write_csv(out_dir / "images.csv", rows, IMAGE_COLUMNS)
    write_csv(out_dir / "objects.csv", objects, OBJECT_COLUMNS)
    scored = [r for r in rows if r.get("n_gt")]
    seg = sum(r["seg_score_sum"] for r in scored) / sum(r["n_gt"] for r in scored) if scored else None
    factors = np.array([r["scale_factor"] for r in rows], dtype=np.float64)
    result = {
        "out_dir": str(out_dir), "n_images": len(rows), "n_segmented_now": n_done, "n_kept": len(rows) - n_done,
        "n_objects": int(sum(r["n_objects"] for r in rows)), "seg": seg, "n_scored_images": len(scored),
        "resized_images": int((factors != 1.0).sum()), "wall_seconds": wall,
        "seconds_per_image": wall / n_done if n_done else None, **segmenter.describe(),
        "stacks": {name: str(path) for name, path in stacks.items()},
    }
    write_json(out_dir / RESULT_NAME, result)
    if tensorboard_images:
        from inpaintaff.viz.tensorboard import log_to_tensorboard

        pics = {f"segment_folder/{r['image']}": outputs.overlay(r["image"]) for r in rows[:tensorboard_images]
                if outputs.overlay(r["image"]).is_file()}
        scalars = {"segment_folder/seg": seg, "segment_folder/n_objects": result["n_objects"]}
        log_to_tensorboard(out_dir / "tensorboard", images=pics, scalars=scalars)
    log.info("%d image(s), %d object(s) in %s%s", len(rows), result["n_objects"], out_dir,
             "" if seg is None else f"; SEG {seg:.3f} over {len(scored)} image(s) with masks")
    return result


def assemble_stacks(outputs: FolderOutputs, refs: list[FrameRef]) -> dict[str, Path]:
    """The label stack ``masks/<stem>.tif`` of every stack file whose planes are all in ``refs``, from
    their masks (``masks/<stem>/pNNNN.tif``, read one at a time), written again when a plane's mask is
    newer; by file stem."""
    from inpaintaff.io.ctc import read_labels, write_label_stack
    from inpaintaff.io.folder import image_layout

    by_file: dict[Path, list[FrameRef]] = {}
    for ref in refs:
        if ref.plane is not None:
            by_file.setdefault(ref.raw_path, []).append(ref)
    stacks = {}
    for path, planes in by_file.items():
        planes = sorted(planes, key=lambda r: r.plane)
        if [r.plane for r in planes] != list(range(planes[0].n_planes or 0)):
            log.info("%s: not every plane is in this split, so no label stack is written", path.name)
            continue
        masks = [outputs.mask(r.name) for r in planes]
        target = outputs.mask(path.stem)
        if not target.is_file() or target.stat().st_mtime_ns < max(m.stat().st_mtime_ns for m in masks):
            marked = {a for a in image_layout(path)[1] if a in "TZ"}
            axes = f"{marked.pop()}YX" if len(marked) == 1 else "QYX"  # a time-lapse, a z-stack, or either
            first = read_labels(masks[0])  # its shape is the stack's; it is written first, not read again
            rest = (read_labels(m) for m in masks[1:])
            write_label_stack(target, itertools.chain([first], rest), (len(masks), *first.shape), axes)
            log.info("%s: the masks of its %d planes -> %s", path.name, len(masks), target)
        stacks[path.stem] = target
    return stacks


def select_alpha(segmenter: Segmenter, source: FrameSource, spec: SelectSpec, out_dir: Path) -> dict:
    """Choose α and the fragment size on the images of ``spec.split`` that have masks, store the
    choice and its curve in ``<out_dir>/alpha_selection.json`` and ``seg_vs_alpha.png``, and set
    them on ``segmenter``."""
    from dataclasses import replace

    from inpaintaff.segment.alpha import count_merged_objects, foreground_key, record_alpha_selection
    from inpaintaff.segment.selection import best_row, sweep_alpha
    from inpaintaff.viz.scores import plot_seg_vs_alpha

    refs = [r for r in source.frames(spec.split) if r.gt_path is not None]
    if not refs:
        raise InputError(getattr(source, "root", None), f"task.select needs images with masks in split "
                         f"{spec.split!r} (data.masks, and data.splits.{spec.split} naming some of them)")
    one_pass, prepared, gts = segmenter.one_pass, [], []
    for ref in refs:
        image = percentile_normalize(source.load_raw(ref), *segmenter.normalize, source=ref.raw_path)
        gts.append(source.load_labels(ref))
        prepared.append(one_pass.prepare(image, source.diameter, gts[-1]))
    rows = sweep_alpha(one_pass, prepared, gts, spec.alphas, spec.min_sizes, spec.thresholds)
    best = best_row(rows, spec.alphas, spec.seg_tolerance)
    n_merged = count_merged_objects(source, spec.split)
    if n_merged < spec.min_merged:
        log.warning("the %d selection image(s) hold only %d nuclei that touch another (task.select.min_merged=%d): "
                    "alpha is chosen on few merges", len(refs), n_merged, spec.min_merged)
    label = f"one pass + {segmenter.settings.foreground.upper()}"
    threshold = best["threshold"]  # None unless the foreground is FGNET's
    curve = [r for r in rows if r["threshold"] == threshold]
    record_alpha_selection(out_dir, label, foreground_key(segmenter.settings.foreground), best["alpha"], curve,
                           spec.split, n_merged, best["min_size"], threshold)
    plot_seg_vs_alpha(out_dir / "seg_vs_alpha.png", [
        {**r, "label": label, "dataset": source.dataset,
         "split": f"{spec.split}, min size {r['min_size']}"
                  + ("" if r["threshold"] is None else f", threshold {r['threshold']:g}")} for r in rows])
    one_pass.settings = replace(one_pass.settings, alpha=best["alpha"], min_size=best["min_size"],
                                threshold=one_pass.settings.threshold if threshold is None else threshold)
    log.info("alpha %g, min size %d%s chosen on %d image(s) (SEG %.4f): %s", best["alpha"], best["min_size"],
             "" if threshold is None else f", FGNET threshold {threshold:g}", len(refs), best["seg"],
             out_dir / "alpha_selection.json")
    return {"alpha": best["alpha"], "min_size": best["min_size"], "threshold": threshold,
            "seg": best["seg"], "n_images": len(refs), "n_merged_objects": n_merged, "curve": rows}


def run(cfg: DictConfig) -> dict:
    # One run at a time per output folder, taken by the launching process only: with
    # trainer.devices=N the processes Lightning starts belong to this run (inpaintaff.utils.locks).
    with folder_lock(cfg.task.out_dir, "task=segment_folder", hold=launching_process()):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    t = typed(cfg.task, SegmentFolderSettings)
    check_threads(t.torch_threads)
    if t.torch_threads:
        torch.set_num_threads(int(t.torch_threads))
    pl.seed_everything(int(cfg.seed), workers=True)
    source = hydra.utils.instantiate(cfg.data)
    source.prepare_data()
    refs = source.frames(t.split)
    if not refs:
        raise InputError(getattr(source, "root", None), f"split {t.split!r} holds no image")
    if t.foreground.source == "truefg":
        missing = [r.name for r in refs if r.gt_path is None]
        if missing:
            raise InputError(None, f"task.foreground.source=truefg reads the masks, but {len(missing)} image(s) have "
                             f"none (e.g. {missing[:3]}): set data.masks, or use fgnet")
    segmenter = build_segmenter(t, cfg)
    out_dir = Path(t.out_dir)
    selection = select_alpha(segmenter, source, t.select, out_dir) if t.select.enabled else None
    outputs = FolderOutputs(out_dir)
    todo, kept = plan(segmenter, source, refs, outputs, cfg, t.overwrite)
    if kept:
        log.info("%d of %d image(s) kept from an earlier run with the same record", len(kept), len(refs))
    trainer = build_trainer(cfg)
    start = time.perf_counter()
    if todo:
        module = SegmentFolderModule(segmenter, source, todo, outputs, t.save_affinities, t.overlays,
                                     t.scale.warn_factor)
        loader = DataLoader(_Indices(len(todo)), batch_size=1, collate_fn=_first)
        trainer.predict(module, dataloaders=loader, return_predictions=False)
    wall = time.perf_counter() - start
    if trainer.global_rank != 0:
        return {}
    result = summarize(outputs, refs, out_dir, wall, len(todo), segmenter, t.tensorboard_images)
    if selection is not None:
        result["selection"] = selection
        write_json(out_dir / RESULT_NAME, result)
    return result


def run_segment_folder(overrides: Sequence[str]) -> dict:
    """Compose ``predict`` with ``task=segment_folder data=folder`` and ``overrides`` and run it.

    ``paths.output_dir=<folder>`` among the overrides says where results go."""
    from inpaintaff.tasks import run_task
    from inpaintaff.tasks.compose import compose

    overrides = list(overrides)
    out = next((o.split("=", 1)[1] for o in overrides if o.startswith("paths.output_dir=")), None)
    rest = [o for o in overrides if not o.startswith("paths.output_dir=")]
    cfg = compose("predict", ["task=segment_folder", "data=folder", "~logger", *rest])
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(out or "inpaintaff_results").resolve())
    return run_task(cfg)
