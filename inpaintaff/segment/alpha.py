"""α that travels with its affinities: the chosen α and its curve, stored beside the affinity files.

``task=segment_select`` and ``task=table1`` write ``alpha_selection.json`` into the affinities'
folder (one entry per foreground); ``task=segment task.alpha=auto`` reads it back, so new frames
predicted into that folder (or with the same checkpoint) are segmented with the measured α.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from inpaintaff.io.files import write_json
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.pipeline import crop_window
from inpaintaff.segment.settings import SegmentSettings
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.plugins import is_target, target_name

log = logging.getLogger(__name__)

ALPHA_FILE = "alpha_selection.json"


def checkpoint_alpha_file(ckpt: str | Path) -> Path:
    """Where a checkpoint's measured α lives: ``<ckpt without .ckpt>.alpha.json`` beside it."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + ".alpha.json")


def checkpoint_fgnet_file(ckpt: str | Path) -> Path:
    """Where a student's own FGNET lives (the recipe ships it there): ``<ckpt without .ckpt>.fgnet.ckpt``
    beside it."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + ".fgnet.ckpt")


def load_alpha_file(path: str | Path) -> dict:
    """The entries of an α file (``alpha_selection.json`` or ``<ckpt>.alpha.json``): foreground ->
    entry; a file that is not such JSON is an error naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable alpha file (JSON error: {exc}): delete it and choose alpha again "
                         "(task=segment_select or task=table1)") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(path, "not an alpha file: expected a JSON object of foreground -> {alpha, min_size, ...}")
    return data


def check_alpha_entry(path: str | Path, key: str, entry: Mapping[str, Any]) -> None:
    """An entry holds a numeric ``alpha`` and a fragment size ``min_size`` >= 0; else an error naming the file."""
    for name in ("alpha", "min_size"):
        if name not in entry:
            raise InputError(path, f"the entry for foreground {key!r} has no {name!r} (written by an older version?): "
                             "choose alpha again with task=segment_select or task=table1")
    try:
        alpha, min_size = float(entry["alpha"]), int(entry["min_size"])
    except (TypeError, ValueError):
        alpha = min_size = None
    if alpha is None or not np.isfinite(alpha) or min_size < 0 or min_size != entry["min_size"]:
        raise InputError(path, f"the entry for foreground {key!r} needs a number 'alpha' and an integer 'min_size' "
                         f">= 0, got alpha={entry['alpha']!r}, min_size={entry['min_size']!r}")


def seed_from_checkpoint(ckpt: str | Path | None, aff_dir: str | Path) -> Path | None:
    """Copy the checkpoint's measured α beside new affinities (unless an α is stored there already),
    so that ``task.alpha=auto`` works on frames without labels."""
    if not ckpt:
        return None
    src, dst = checkpoint_alpha_file(ckpt), Path(aff_dir) / ALPHA_FILE
    if not src.is_file() or dst.is_file():
        return None
    data = load_alpha_file(src)
    for entry in data.values():
        entry["from_checkpoint"] = str(Path(ckpt).name)
    write_json(dst, data)
    return dst


def foreground_key(source: str | Mapping[str, Any]) -> str:
    """The foreground (``task.foreground.source``) an α was chosen for, as stored: ``truefg``,
    ``fgnet`` (probability files), ``intensity``, ``all``, or a ``_target_`` source's class name."""
    if is_target(source):
        return target_name(source)
    return {"dir": "fgnet", "file": "fgnet"}.get(source, source)


def record_alpha_selection(aff_dir: str | Path, label: str, foreground: str, alpha: float,
                           curve: Sequence[Mapping[str, Any]], split: str, n_merged: int | None = None,
                           min_size: int = 0, threshold: float | None = None) -> Path:
    """Add (or replace) the entry for this foreground in ``<aff_dir>/alpha_selection.json``
    (``threshold``: FGNET's, when it was chosen with α)."""
    path = Path(aff_dir) / ALPHA_FILE
    data = load_alpha_file(path) if path.is_file() else {}
    data[foreground_key(foreground)] = {
        "alpha": float(alpha), "min_size": int(min_size),
        **({} if threshold is None else {"threshold": float(threshold)}), "label": label, "chosen_on": split,
        "n_merged_objects": n_merged,
        "curve": [{"alpha": float(c["alpha"]), "seg": c["seg"]} for c in curve],
        "written_at": datetime.now(timezone.utc).isoformat(),
    }
    write_json(path, data)
    return path


def read_alpha(path_or_dir: str | Path, foreground: str) -> tuple[float, dict]:
    """The stored α for this foreground source (from a folder's ``alpha_selection.json`` or a file);
    an error naming the file when there is none."""
    path = Path(path_or_dir)
    path = path / ALPHA_FILE if path.is_dir() or not path.suffix else path
    if not path.is_file():
        raise InputError(path, "no stored alpha: run task=segment_select (or task=table1) on validation frames "
                         "with these affinities first, or give task.alpha as a number")
    key = foreground_key(foreground)
    data = load_alpha_file(path)
    if key not in data:
        raise InputError(path, f"no alpha stored for foreground {key!r} (stored: {sorted(data)})")
    check_alpha_entry(path, key, data[key])
    return float(data[key]["alpha"]), data[key]


def count_merged_objects(dm: Any, split: str, crop: Sequence[int] | None = None) -> int:
    """GT objects of ``split`` that share a connected component of TRUEFG with another GT object:
    the merges that a choice of α must learn to undo. With ``crop`` ([y0, x0, h, w], the window
    that is segmented and scored), only what lies inside it counts."""
    total = 0
    for ref in dm.frames(split):
        if ref.gt_path is None:
            continue
        labels = dm.load_labels(ref)
        win = crop_window(crop, labels.shape, ref.gt_path)
        if win is not None:
            labels = labels[win]
        comps, _ = ndi.label(true_foreground(labels))
        pairs = np.unique(np.stack([comps[labels > 0], labels[labels > 0]]), axis=1)
        comp_ids, counts = np.unique(pairs[0], return_counts=True)
        total += int(counts[counts > 1].sum())
    return total


def resolve_alpha(task: SegmentSettings) -> tuple[float, SegmentSettings]:
    """``task.alpha`` as a number, and ``task`` with the fragment size and FGNET threshold chosen with
    it; ``auto`` reads all three from the α stored beside the affinities (or in ``task.alpha_file``)
    for this foreground, as ``task=segment_select``/``task=table1`` chose them. A number keeps
    ``task.mws`` and ``task.foreground.threshold`` as they are."""
    if str(task.alpha) != "auto":
        return float(task.alpha), task  # a number: SegmentSettings checked it
    where = task.alpha_file or task.affinities.dir
    if not where:
        raise ValueError("task.alpha=auto needs task.affinities.dir (or task.alpha_file) holding alpha_selection.json")
    value, entry = read_alpha(where, task.foreground.source)
    task = replace(task, mws=replace(task.mws, min_size=int(entry["min_size"])))
    threshold = entry.get("threshold") if foreground_key(task.foreground.source) == "fgnet" else None
    if threshold is not None:
        task = replace(task, foreground=replace(task.foreground, threshold=float(threshold)))
    log.info("alpha=auto: %g (min_size %d%s), chosen on %s for %s (%s)", value, task.mws.min_size,
             "" if threshold is None else f", FGNET threshold {threshold:g}", entry["chosen_on"], entry["label"], where)
    return value, task
