"""``task=folder_table``: Table 1 of the paper on a plain folder of images with masks (``data=folder``).

    python predict.py experiment=dsb_table

Per row of ``task.rows`` (CC of the true foreground, or the mutex watershed on the affinities of a
one-pass checkpoint with TRUEFG or an FGNET checkpoint's foreground): every image of
``task.select_split`` is prepared once (resized to the checkpoint's nucleus size, foreground,
affinities), α × fragment size is swept on them and the best pair chosen; every image of each
of ``task.eval_splits`` is then segmented with it, and the SEG-against-α curve of those splits is
recorded at the chosen size (shown, never used to choose). Scores pool every image of a split:
SEG and detection accuracy at IoU 0.5 (TP / (TP + FP + FN)), against full masks.

Writes ``folder_table.md``/``.csv``/``.json``, ``seg_vs_alpha.png``, ``comparison.png`` (the rows
side by side on the most crowded images of the first evaluation split), per row
``rows/<slug>/result.json`` with its masks and overlays, and TensorBoard events. A row whose
record (settings, split names, SHA-1 of every image, mask and checkpoint) matches its
``result.json`` is read back, not recomputed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import MISSING, DictConfig

from inpaintaff.data.sources import FrameRef
from inpaintaff.io.ctc import read_labels, write_labels
from inpaintaff.io.files import write_json
from inpaintaff.io.records import differences, make_record, source_settings
from inpaintaff.io.results import write_csv
from inpaintaff.metrics.ctc import SegResult, pool_seg, seg_from_overlap
from inpaintaff.metrics.detection import ACCURACY_IOU, ACCURACY_KEY
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.baselines import connected_components
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.one_pass import OnePassSegmenter
from inpaintaff.segment.selection import best_row, pooled_scores, sweep_alpha
from inpaintaff.segment.settings import check_min_sizes
from inpaintaff.tasks.table1 import row_slug
from inpaintaff.utils.config import typed
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import touching_ids

log = logging.getLogger(__name__)

IOU = ACCURACY_IOU  # detection accuracy's IoU threshold
RESULT = "result.json"
METHODS = ("cc", "mws")


@dataclass
class Row:
    """One row: ``method: cc`` (connected components of TRUEFG) or ``mws`` on the affinities of the
    checkpoint ``affinities``, with ``foreground`` truefg or the path of an FGNET checkpoint.
    ``affinities``, ``alphas``, ``min_sizes`` may be left out (null: none, the task's grids)."""

    label: str = MISSING
    method: str = MISSING
    foreground: str = MISSING
    affinities: str | None = None
    alphas: list[float] | None = None
    min_sizes: list[int] | None = None

    def __post_init__(self) -> None:
        """The method, affinities and foreground fit together; else an error naming the row."""
        where = f"task.rows ({self.label!r})"
        if self.method not in METHODS:
            raise ValueError(f"{where}: method must be one of {METHODS}, got {self.method!r}")
        if self.method == "cc" and (self.affinities or self.foreground != "truefg"):
            raise ValueError(f"{where}: a cc row takes the true foreground (foreground: truefg) and no affinities")
        if self.method == "mws" and not self.affinities:
            raise ValueError(f"{where}: an mws row needs affinities: <a DISTILL student or AFFNET checkpoint>")
        check_min_sizes(self.min_sizes, f"{where} min_sizes")


@dataclass
class SegmenterSpec:
    """What ``Segmenter.from_checkpoints`` takes besides the checkpoints and α."""

    threshold: float = MISSING
    tile: int = MISSING
    halo: int = MISSING
    fill_holes: bool = MISSING
    tolerance: float = MISSING
    min_objects: int = MISSING
    backend: str = MISSING


@dataclass
class FigureSpec:
    n_images: int = MISSING


@dataclass
class FolderTableSettings:
    """``task=folder_table`` (defaults in ``conf/task/folder_table.yaml``)."""

    name: str = MISSING
    select_split: str = MISSING
    eval_splits: list[str] = MISSING
    alphas: list[float] = MISSING
    min_sizes: list[int] = MISSING
    seg_tolerance: float = MISSING  # of the settings within this of the best SEG, the most accurate at IoU 0.5
    thresholds: list[float] = MISSING  # FGNET rows: foreground thresholds chosen with α (empty: segmenter's)
    checkpoints: dict[str, str | None] = MISSING  # named paths rows refer to by interpolation
    rows: list[Row] = MISSING
    skip_missing: bool = MISSING
    segmenter: SegmenterSpec = field(default_factory=SegmenterSpec)
    figure: FigureSpec = field(default_factory=FigureSpec)

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("task.rows is empty: nothing to put in the table")
        if not self.alphas:
            raise ValueError("task.alphas is empty: nothing to choose α from")
        check_min_sizes(self.min_sizes, "task.min_sizes")


# --- settings ---------------------------------------------------------------------------------


def settings(cfg: DictConfig) -> FolderTableSettings:
    """``cfg.task`` typed and checked (by the settings themselves)."""
    return typed(cfg.task, FolderTableSettings)


def row_grid(t: FolderTableSettings, row: Row) -> tuple[list[float], list[int]]:
    """The α and fragment sizes a row sweeps (its own, or the task's)."""
    return list(row.alphas or t.alphas), list(row.min_sizes or t.min_sizes)


def row_thresholds(t: FolderTableSettings, row: Row) -> list[float] | None:
    """The FGNET thresholds a row chooses from (None: a TRUEFG or CC row, no threshold)."""
    if row.foreground == "truefg":
        return None
    return list(t.thresholds or [t.segmenter.threshold])


def row_checkpoints(row: Row) -> dict[str, str | None]:
    """The checkpoint files a row reads (name -> path; None: not used)."""
    fg = None if row.foreground == "truefg" else row.foreground
    return {"affinities": row.affinities, "foreground": fg}


def usable_rows(t: FolderTableSettings) -> tuple[list[Row], list[dict]]:
    """The rows whose checkpoints exist, and the skipped ones (``task.skip_missing``); a missing
    checkpoint is otherwise an error naming it."""
    rows, skipped = [], []
    for row in t.rows:
        missing = [p for p in row_checkpoints(row).values() if p and not Path(p).is_file()]
        if not missing:
            rows.append(row)
        elif t.skip_missing:
            log.warning("row %r skipped: checkpoint not found: %s (task.skip_missing=true)", row.label,
                        ", ".join(missing))
            skipped.append({"label": row.label, "missing": missing})
        else:
            raise InputError(missing[0], f"checkpoint of row {row.label!r} not found (task.rows; or set "
                             "task.skip_missing=true to leave such rows out)")
    return rows, skipped


# --- data -------------------------------------------------------------------------------------


def split_refs(dm: Any, split: str, key: str) -> list[FrameRef]:
    """The images of ``split``, each with a mask; an empty split or an image without mask is an error."""
    refs = dm.frames(split)
    where = getattr(dm, "images_dir", None)
    if not refs:
        raise InputError(where, f"{key}={split!r}: the split holds no image (data.splits.{split})")
    unmasked = [r.name for r in refs if r.gt_path is None]
    if unmasked:
        raise InputError(getattr(dm, "masks_dir", None) or where,
                         f"{len(unmasked)} image(s) of split {split!r} have no mask (data.masks), e.g. "
                         f"{unmasked[:5]}: the table scores every image of a split against its mask")
    return refs


def load_pair(dm: Any, ref: FrameRef) -> tuple[np.ndarray, np.ndarray]:
    """The normalised image and its mask."""
    return dm.load_image(ref), dm.load_labels(ref)


# --- scores -----------------------------------------------------------------------------------


def score(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> dict:
    """SEG and detection accuracy at IoU 0.5, pooled over the images; the images and GT objects."""
    return split_scores(pooled_scores(gts, preds), len(gts))


def split_scores(pooled: Mapping[str, Any], n_images: int) -> dict:
    """A split's entry in the table from pooled scores (``selection.pooled_scores`` or a grid row)."""
    return {"seg": pooled["seg"], ACCURACY_KEY: pooled[ACCURACY_KEY], "n_images": n_images, "n_gt": pooled["n_gt"]}


def curve(per_alpha: Mapping[float, Sequence[SegResult]]) -> list[dict]:
    """Pooled SEG per α."""
    out = []
    for alpha, results in per_alpha.items():
        seg = pool_seg(results)
        out.append({"alpha": alpha, "seg": seg.seg if seg.n_gt else None, "n_gt": seg.n_gt})
    return out


# --- rows -------------------------------------------------------------------------------------


def build_one_pass(t: FolderTableSettings, row: Row, cfg: DictConfig) -> OnePassSegmenter:
    """The row's one-pass segmenter, built as ``Segmenter.from_checkpoints`` builds it."""
    from inpaintaff.segmenter import Segmenter

    s, norm = t.segmenter, cfg.data.get("normalize") or {"low": 1.0, "high": 99.8}
    fg = row_checkpoints(row)["foreground"]
    seg = Segmenter.from_checkpoints(
        row.affinities, fg, foreground_source="fgnet" if fg else "truefg", alpha=row_grid(t, row)[0][0], min_size=0,
        threshold=s.threshold, tile=s.tile, halo=s.halo, fill_holes=s.fill_holes, tolerance=s.tolerance,
        min_objects=s.min_objects, backend=s.backend, seed=int(cfg.seed),
        normalize=(float(norm["low"]), float(norm["high"])), device="cpu",
        min_area_fraction=0.0)  # the table keeps every object, as task=segment (the paper's protocol)
    return seg.one_pass


class RowOutputs:
    """Where one row's files go: ``rows/<slug>/``."""

    def __init__(self, work: Path, label: str):
        self.root = work / "rows" / row_slug(label)

    def mask(self, split: str, name: str) -> Path:
        return self.root / split / "masks" / f"{name}.tif"

    def overlay(self, name: str) -> Path:
        return self.root / "overlays" / f"{name}.png"

    @property
    def result(self) -> Path:
        return self.root / RESULT

    def read(self) -> dict | None:
        """The kept ``result.json`` (None: none, or unreadable)."""
        if not self.result.is_file():
            return None
        try:
            return json.loads(self.result.read_text())
        except ValueError:
            log.warning("%s is unreadable: the row is computed again", self.result)
            return None


def select_mws(one_pass: OnePassSegmenter, dm: Any, refs: Sequence[FrameRef], alphas: list[float],
               min_sizes: list[int], seg_tolerance: float, thresholds: list[float] | None = None) -> dict:
    """α, fragment size (and FGNET's threshold) chosen on ``refs``: the grid, the choice, its curve and
    its scores."""
    diameter = getattr(dm, "diameter", None)
    prepared, gts = [], []
    for ref in refs:
        image, gt = load_pair(dm, ref)
        gts.append(gt)
        prepared.append(one_pass.prepare(image, diameter, gt))
    grid = sweep_alpha(one_pass, prepared, gts, alphas, min_sizes, thresholds)
    best = best_row(grid, alphas, seg_tolerance)
    # The grid scored the chosen setting already.
    return {"alpha": best["alpha"], "min_size": best["min_size"], "threshold": best["threshold"], "grid": grid,
            "selection": [r for r in grid if r["min_size"] == best["min_size"]
                          and r["threshold"] == best["threshold"]],
            "scores": split_scores(best, len(prepared))}


def eval_mws(one_pass: OnePassSegmenter, dm: Any, refs: Sequence[FrameRef], alphas: list[float], alpha: float,
             min_size: int, out: RowOutputs, split: str, threshold: float | None = None) -> dict:
    """One evaluation split at the chosen α (masks written), and its SEG against α at ``min_size``."""
    diameter = getattr(dm, "diameter", None)
    per_alpha: dict[float, list[SegResult]] = {float(a): [] for a in alphas}
    gts, preds, seconds = [], [], []
    for ref in refs:
        image, gt = load_pair(dm, ref)
        t0 = time.perf_counter()
        prep = one_pass.prepare(image, diameter, gt)
        labels = one_pass.finish(prep, alpha, min_size, threshold)
        seconds.append(time.perf_counter() - t0)
        for a in per_alpha:
            lab = labels if a == alpha else one_pass.finish(prep, a, min_size, threshold)
            per_alpha[a].append(seg_from_overlap(overlap(gt, lab)))
        write_labels(out.mask(split, ref.name), labels)
        gts.append(gt)
        preds.append(labels)
    return {**score(gts, preds), "curve": curve(per_alpha), "seconds": seconds}


def run_mws_row(cfg: DictConfig, t: FolderTableSettings, row: Row, dm: Any, refs: Mapping[str, list[FrameRef]],
                out: RowOutputs) -> dict:
    """α chosen on the selection split, then every evaluation split segmented with it."""
    one_pass = build_one_pass(t, row, cfg)
    alphas, min_sizes = row_grid(t, row)
    chosen = select_mws(one_pass, dm, refs[t.select_split], alphas, min_sizes, t.seg_tolerance,
                        row_thresholds(t, row))
    alpha, min_size, threshold = chosen["alpha"], chosen["min_size"], chosen["threshold"]
    splits = {t.select_split: chosen["scores"]}
    seconds: list[float] = []
    for split in t.eval_splits:
        entry = eval_mws(one_pass, dm, refs[split], alphas, alpha, min_size, out, split, threshold)
        seconds += entry.pop("seconds")
        splits[split] = entry
    return {"alpha": alpha, "min_size": min_size, "threshold": threshold, "grid": chosen["grid"],
            "selection": chosen["selection"],
            "splits": splits, "seconds_per_image": float(np.mean(seconds))}


def run_cc_row(t: FolderTableSettings, dm: Any, refs: Mapping[str, list[FrameRef]], out: RowOutputs) -> dict:
    """Connected components of the true foreground, at each image's own scale."""
    splits, seconds = {}, []
    for split in [t.select_split, *t.eval_splits]:
        gts, preds = [], []
        for ref in refs[split]:
            gt = dm.load_labels(ref)
            t0 = time.perf_counter()
            labels = connected_components(true_foreground(gt))
            if split != t.select_split:
                seconds.append(time.perf_counter() - t0)
                write_labels(out.mask(split, ref.name), labels)
            gts.append(gt)
            preds.append(labels)
        splits[split] = score(gts, preds)
    return {"alpha": None, "min_size": None, "splits": splits, "seconds_per_image": float(np.mean(seconds))}


def row_record(cfg: DictConfig, t: FolderTableSettings, row: Row, dm: Any,
               refs: Mapping[str, list[FrameRef]]) -> dict:
    """What shapes a row's result: its settings, the splits, every image and mask file, its checkpoints."""
    alphas, min_sizes = row_grid(t, row)
    shaping = {"row": {**asdict(row), "alphas": alphas, "min_sizes": min_sizes}, "seg_tolerance": t.seg_tolerance,
               **({"thresholds": row_thresholds(t, row)} if row_thresholds(t, row) else {}),
               "segmenter": asdict(t.segmenter), "seed": int(cfg.seed), "select_split": t.select_split,
               "eval_splits": list(t.eval_splits), "stems": {s: [r.name for r in rs] for s, rs in refs.items()},
               "data": {**source_settings(dm), "diameter": getattr(dm, "diameter", None)}}
    inputs = {}
    for split, rs in refs.items():
        for ref in rs:
            inputs[f"{split}/{ref.name}/image"] = ref.raw_path
            inputs[f"{split}/{ref.name}/mask"] = ref.gt_path
    return make_record(shaping, inputs, row_checkpoints(row))


def row_result(cfg: DictConfig, t: FolderTableSettings, row: Row, dm: Any, refs: Mapping[str, list[FrameRef]],
               work: Path) -> dict:
    """A row's result: read back when its record matches, else computed (and written)."""
    out = RowOutputs(work, row.label)
    record = row_record(cfg, t, row, dm, refs)
    kept = out.read()
    if kept is not None:
        diff = differences(kept.get("record"), record)
        if not diff:
            log.info("%s: read back from %s", row.label, out.result)
            return kept["result"]
        log.info("%s: recomputed, its kept result differs (%s)", row.label, "; ".join(diff[:4]))
    t0 = time.perf_counter()
    body = run_cc_row(t, dm, refs, out) if row.method == "cc" else run_mws_row(cfg, t, row, dm, refs, out)
    result = {"label": row.label, "method": row.method, "affinities": row.affinities,
              "foreground": row.foreground, **body, "row_seconds": time.perf_counter() - t0,
              "output_dir": str(out.root)}
    write_json(out.result, {"record": record, "result": result})
    return result


# --- table and pictures -----------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def table_markdown(results: Sequence[Mapping], splits: Sequence[str]) -> str:
    """One line per row: α and min size, SEG and accuracy@0.5 per split, seconds per image."""
    head = ["Method", f"α, min size[, FGNET threshold] (chosen on {splits[0]})"]
    for s in splits:
        head += [f"SEG {s}", f"acc@0.5 {s}"]
    head.append("s / image")
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in results:
        chosen = "—" if r["method"] == "cc" else f"{r['alpha']:g}, {r['min_size']}"
        if r.get("threshold") is not None:
            chosen += f", {r['threshold']:g}"
        cells = [r["label"], chosen]
        for s in splits:
            cells += [_fmt(r["splits"][s]["seg"]), _fmt(r["splits"][s][ACCURACY_KEY])]
        cells.append(f"{r['seconds_per_image']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_rows(results: Sequence[Mapping], splits: Sequence[str]) -> list[dict]:
    """The table as CSV rows."""
    rows = []
    for r in results:
        row = {"method": r["label"], "alpha": r["alpha"], "min_size": r["min_size"], "threshold": r.get("threshold")}
        for s in splits:
            e = r["splits"][s]
            row.update({f"seg_{s}": e["seg"], f"{ACCURACY_KEY}_{s}": e[ACCURACY_KEY], f"n_images_{s}": e["n_images"],
                        f"n_gt_{s}": e["n_gt"]})
        rows.append({**row, "seconds_per_image": r["seconds_per_image"]})
    return rows


def crowded_images(dm: Any, refs: Sequence[FrameRef], n: int) -> list[tuple[FrameRef, int]]:
    """The ``n`` images with the most GT objects touching another (ties: in split order)."""
    counts = [(ref, int(touching_ids(dm.load_labels(ref)).size)) for ref in refs]
    return sorted(counts, key=lambda rc: -rc[1])[:n]


def comparison_figure(work: Path, results: Sequence[Mapping], dm: Any, refs: Sequence[FrameRef], split: str,
                      n: int) -> dict[str, Path]:
    """Per crowded image: the rows side by side (stacked into ``comparison.png``) and per-row overlays."""
    from inpaintaff.viz.overlays import save_overlay, save_rgb_png, side_by_side
    from inpaintaff.viz.tensorboard import image_rgb

    pictures: dict[str, Path] = {}
    panels_png = []
    for rank, (ref, n_touch) in enumerate(crowded_images(dm, refs, n)):
        image, gt = load_pair(dm, ref)
        panels = [("GT", gt)]
        for r in results:
            out = RowOutputs(work, r["label"])
            labels = read_labels(out.mask(split, ref.name))
            how = "" if r["method"] == "cc" else f", α {r['alpha']:g}"
            save_overlay(out.overlay(ref.name), image, labels, gt, f"{r['label']}{how}: {ref.name}")
            panels.append((f"{r['label']}{how}", labels))
        path = side_by_side(work / "comparison" / f"{rank}_{ref.name}.png", image, gt, panels,
                            f"{split}/{ref.name}: {n_touch} GT objects touch another; red false merge, yellow split")
        panels_png.append(image_rgb(path))
    if panels_png:
        width = max(p.shape[1] for p in panels_png)
        stacked = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=1.0)
                                  for p in panels_png])
        pictures["folder_table/comparison"] = save_rgb_png(work / "comparison.png", stacked)
    return pictures


def pictures(work: Path, results: Sequence[Mapping], dm: Any, t: FolderTableSettings,
             refs: Mapping[str, list[FrameRef]]) -> dict[str, Path]:
    """``seg_vs_alpha.png`` and the comparison figure (logged to TensorBoard by the caller)."""
    from inpaintaff.viz.scores import plot_alpha_curves

    plotted = [{**r, f"seg_{t.select_split}": r["splits"][t.select_split]["seg"]} for r in results]
    splits = [t.select_split, *t.eval_splits]
    out = {"folder_table/seg_vs_alpha": plot_alpha_curves(work / "seg_vs_alpha.png", plotted, splits, splits[0])}
    if t.figure.n_images > 0 and t.eval_splits:
        split = t.eval_splits[0]
        out.update(comparison_figure(work, results, dm, refs[split], split, t.figure.n_images))
    return out


def write_table(work: Path, results: list[dict], skipped: list[dict], dm: Any, t: FolderTableSettings) -> dict:
    """``folder_table.md``/``.csv``/``.json``."""
    splits = [t.select_split, *t.eval_splits]
    md = table_markdown(results, splits) if results else "(no row: every row was skipped)\n"
    first = results[0]["splits"] if results else {}
    counts = ", ".join(f"`{s}` {first[s]['n_images']} images / {first[s]['n_gt']} GT objects"
                       for s in splits if s in first)
    header = (f"SEG and detection accuracy at IoU {IOU} of {dm.dataset}, pooled per split: α and min size "
              f"chosen on `{t.select_split}` ({counts}).\n\n")
    skipped_md = "".join(f"\nSkipped (checkpoint not found): {s['label']} ({', '.join(s['missing'])})"
                         for s in skipped)
    (work / "folder_table.md").write_text(header + md + skipped_md + ("\n" if skipped_md else ""))
    write_csv(work / "folder_table.csv", csv_rows(results, splits))
    report = {"dataset": dm.dataset, "select_split": t.select_split, "eval_splits": list(t.eval_splits),
              "iou": IOU, "rows": results, "skipped": skipped, "markdown": md}
    write_json(work / "folder_table.json", report)
    log.info("folder table (%s):\n%s%s%s", work, header, md, skipped_md)
    return report


def run(cfg: DictConfig) -> dict:
    """The table of ``cfg.task`` on ``cfg.data``."""
    from inpaintaff.viz.tensorboard import log_to_tensorboard

    t = settings(cfg)
    rows, skipped = usable_rows(t)
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    refs = {t.select_split: split_refs(dm, t.select_split, "task.select_split")}
    for split in t.eval_splits:
        refs[split] = split_refs(dm, split, "task.eval_splits")
    work = Path(cfg.paths.output_dir).resolve()
    results = []
    for row in rows:
        results.append(row_result(cfg, t, row, dm, refs, work))
        log.info("%s: %s", row.label, {s: _fmt(v["seg"]) for s, v in results[-1]["splits"].items()})
    report = write_table(work, results, skipped, dm, t)
    if results:
        images = pictures(work, results, dm, t, refs)
        scalars = {f"folder_table/{row_slug(r['label'])}/{k}_{s}": v[k] for r in results
                   for s, v in r["splits"].items() for k in ("seg", ACCURACY_KEY)}
        log_to_tensorboard(work / "tensorboard", images=images, scalars=scalars)
    return report

