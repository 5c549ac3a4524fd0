"""Segment the frames of a split with one α, score them against GT and write what a segment run
writes: CTC masks, ``segment_result.json``, ``scores.csv``, ``detection.csv``, overlays and
TensorBoard events. The library behind ``task=segment``, ``task=segment_select`` and ``task=table1``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from inpaintaff.io import ctc
from inpaintaff.io.files import write_json
from inpaintaff.io.results import RESULT_NAME, write_csv
from inpaintaff.metrics.ctc import pool_seg
from inpaintaff.metrics.detection import ACCURACY_IOU, ACCURACY_KEY, accuracy_at, pool_detection
from inpaintaff.segment.pipeline import FrameInput, FrameScore, load_frame_input, score, segment
from inpaintaff.segment.settings import SegmentSettings, method_label
from inpaintaff.segment.sources import task_sources
from inpaintaff.utils.errors import InputError
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)


def resolved_task(task: SegmentSettings, inputs: Sequence[FrameInput]) -> SegmentSettings:
    """``task`` with ``affinities.kind: auto`` replaced by what the files say."""
    if task.affinities.source == "dir" and task.affinities.kind == "auto":
        kinds = {inp.affinities.kind for inp in inputs if inp.affinities is not None}
        kind = kinds.pop() if len(kinds) == 1 and None not in kinds else "inpaintaff"
        return replace(task, affinities=replace(task.affinities, kind=kind))
    return task


def load_inputs(dm: Any, split: str, task: SegmentSettings, seed: int) -> list[FrameInput]:
    """Read every frame of ``split`` of the data module ``dm`` with its GT, foreground and affinities."""
    refs = dm.frames(split)
    if not refs:
        raise InputError(Path(dm.root) / dm.dataset, f"split {split!r} holds no frames")
    sources = task_sources(task)
    return [load_frame_input(dm, ref, task.crop, int(seed), sources)
            for ref in tqdm(refs, desc="loading frames", unit="frame")]


def evaluate(
    inputs: Sequence[FrameInput], task: SegmentSettings, alpha: float
) -> tuple[list[np.ndarray], list[FrameScore | None], list[float]]:
    """Segment every frame with ``alpha``; scores where GT exists; seconds per frame."""
    labels, scores, seconds = [], [], []
    for inp in tqdm(inputs, desc=f"segmenting (alpha={alpha:g})", unit="frame", leave=False):
        t0 = time.perf_counter()
        lab = segment(inp, task.method, alpha, task.mws)
        seconds.append(time.perf_counter() - t0)
        labels.append(lab)
        scores.append(None if inp.labels is None else
                      score(lab, inp.labels, task.metrics.iou_thresholds, task.metrics.sparse_gt))
    return labels, scores, seconds


def summarize(
    inputs: Sequence[FrameInput], labels: Sequence[np.ndarray], scores: Sequence[FrameScore | None],
    seconds: Sequence[float],
) -> tuple[list[dict], dict]:
    """Per-frame rows and the pooled summary (SEG, detection)."""
    rows = []
    for inp, lab, sc, sec in zip(inputs, labels, scores, seconds):
        row = {"seq": inp.seq, "frame": inp.frame, "n_pred": int(lab.max()), "seconds": sec, "coverage": inp.coverage}
        if sc is not None:
            row.update(sc.seg.as_dict())
            row["seg"] = sc.seg.seg if sc.seg.n_gt else None  # no GT object in the frame (or window)
            row[ACCURACY_KEY] = accuracy_at(sc.detection.as_dict(), ACCURACY_IOU)
        rows.append(row)
    scored = [s for s in scores if s is not None]
    pooled: dict[str, Any] = {"seg": None, "n_gt": 0, "detection": None}
    if scored:
        seg = pool_seg(s.seg for s in scored)
        det = pool_detection(s.detection for s in scored)
        # No GT object in what was scored (e.g. a background-only crop): SEG is undefined, not NaN.
        pooled = {"seg": seg.seg if seg.n_gt else None, "n_gt": seg.n_gt, "n_matched": seg.n_matched,
                  "detection": det.as_dict()}
    return rows, pooled


def write_outputs(
    out: Path,
    task: SegmentSettings,
    dm: Any,
    split: str,
    alpha: float,
    inputs: Sequence[FrameInput],
    labels: Sequence[np.ndarray],
    scores: Sequence[FrameScore | None],
    seconds: Sequence[float],
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Masks, CSV/JSON scores, overlays and TensorBoard logs of one segmentation of a split, into ``out``."""
    task = resolved_task(task, inputs)
    out = Path(out)
    res_root = Path(task.res_root)
    rows, pooled = summarize(inputs, labels, scores, seconds)
    label = method_label(task)
    for row, inp, lab in zip(rows, inputs, labels):
        path = ctc.res_path(res_root, dm.dataset, inp.seq, inp.frame)
        row["mask"] = str(ctc.write_labels(path, inp.full_frame(lab)))
    if task.overlays:
        title = f"{label}, alpha={alpha:g}" if task.method == "mws" else label
        _write_overlays(out, rows, inputs, labels, title, pooled)
    columns = ["seq", "frame", "seg", "n_gt", "n_matched", "n_pred", ACCURACY_KEY, "coverage", "seconds", "mask",
               "overlay"]
    pooled_row = {"seq": "pooled", "seg": pooled["seg"], "n_gt": pooled["n_gt"], "n_matched": pooled.get("n_matched")}
    write_csv(out / "scores.csv", [*rows, pooled_row], columns)
    if pooled["detection"] is not None:
        d = pooled["detection"]
        keys = ["thresholds", "tp", "fp", "fn", "precision", "recall", "f1", "accuracy"]
        det_rows = [dict(zip(keys, vals)) for vals in zip(*(d[k] for k in keys))]
        write_csv(out / "detection.csv", det_rows, keys)
    result = {
        "task": task.name,
        "label": label,
        "dataset": dm.dataset,
        "split": split,
        "alpha": float(alpha),
        "method": task.method,
        "seg": pooled["seg"],
        "n_gt": pooled["n_gt"],
        "n_frames": len(rows),
        "detection": pooled["detection"],
        "frames": rows,
        "res_root": str(res_root),
        "output_dir": str(out),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "config": asdict(task),
        **(extra or {}),
    }
    write_json(out / RESULT_NAME, result)
    seg_txt = "n/a (no GT objects)" if pooled["seg"] is None else f"{pooled['seg']:.4f} over {pooled['n_gt']} objects"
    how = f", alpha={alpha:g}" if result["method"] == "mws" else ""
    log.info("%s on %s/%s%s: SEG %s; results in %s", label, dm.dataset, split, how, seg_txt, out)
    return result


def _write_overlays(out: Path, rows: list[dict], inputs, labels, title: str, pooled: dict) -> None:
    from inpaintaff.viz.overlays import save_overlay

    images, scalars = {}, {"segment/seg_pooled": pooled["seg"]}
    for row, inp, lab in zip(rows, inputs, labels):
        name = f"{inp.seq}_t{inp.frame:03d}"
        path = out / "overlays" / f"{name}.png"
        seg_txt = "" if row.get("seg") is None else f", SEG {row['seg']:.3f}"
        rgb, _ = save_overlay(path, inp.image, lab, inp.labels, f"{inp.seq}/t{inp.frame:03d}: {title}{seg_txt}")
        row["overlay"] = str(path)
        images[f"segment/{name}"] = rgb
        scalars[f"segment/seg_{name}"] = row.get("seg")
    log_to_tensorboard(out / "tensorboard", images=images, scalars=scalars)
