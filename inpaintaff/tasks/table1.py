"""``task=table1``: the paper's Table 1 on one dataset, from raw frames to the table, in one command.

    python predict.py experiment=hela_table1

Stages, each in its own folder below ``paths.output_dir`` and each skipped where its files exist
(rerun the same command to resume):

1. ``fgnet/``: FGNET probabilities of every frame of the selection and evaluation splits;
2. ``aff_<name>/``: InpaintAff affinities per entry of ``task.inpainters`` (the net, the analytic
   inpainter), patches without foreground skipped (``task.inpaintaff``);
3. ``aff_<name>/``: affinities of each one-pass net of ``task.affinity_nets`` (AFFNET, the DISTILL
   student), with their seconds per frame; ``task.affinity_dirs`` (name -> folder) takes a
   source's affinities from a folder written earlier instead (e.g. on a GPU), as they are;
4. ``rows/<row>/``: per row, α chosen on ``task.select_split`` (pooled SEG over ``task.alphas``),
   then every split of ``task.eval_splits`` segmented with it (masks, scores, overlays), and the
   SEG-against-α curve of every split (the evaluation curves are shown, never used to choose);
5. ``table1.md``/``.csv``/``.json`` (the JSON also holds each affinity source's seconds per frame),
   ``seg_vs_alpha.png`` and, with ``task.figure``, ``comparison.png`` (rows side by side on a crop),
   also logged to TensorBoard.

The chosen α and its curve are also stored beside the affinities they belong to
(``alpha_selection.json``, read by ``task=segment task.alpha=auto``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING, DictConfig, OmegaConf

from inpaintaff.io.files import write_json
from inpaintaff.io.results import write_csv
from inpaintaff.segment.alpha import count_merged_objects, record_alpha_selection
from inpaintaff.segment.evaluation import evaluate, load_inputs, resolved_task, summarize, write_outputs
from inpaintaff.segment.selection import select_alpha, sweep
from inpaintaff.segment.settings import SegmentSelectSettings, check_min_sizes, segment_settings
from inpaintaff.tasks.compose import load_data, run_subtask, subtask_config, task_group
from inpaintaff.utils.config import typed
from inpaintaff.utils.errors import InputError
from inpaintaff.viz.overlays import side_by_side
from inpaintaff.viz.scores import plot_alpha_curves
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)

FGNET_DIR = "fgnet"


def row_slug(label: str) -> str:
    """A row label as a folder name (`CC on TRUEFG` -> `cc_on_truefg`)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower()


def predict_spec(dm: Any, splits: Sequence[str]) -> list[dict]:
    """The frames of ``splits`` (each once) as a ``data.splits.predict`` list."""
    by_seq: dict[str, list[int]] = {}
    for split in splits:
        for ref in dm.frames(split):
            frames = by_seq.setdefault(ref.seq, [])
            if ref.frame not in frames:
                frames.append(ref.frame)
    return [{"seq": seq, "frames": sorted(frames)} for seq, frames in by_seq.items()]


@dataclass
class Row:
    """One row of the table: CC (``method: cc``) or the mutex watershed on the affinities ``affinities``
    names (a key of ``inpainters``, ``affinity_nets`` or ``affinity_dirs``), with a foreground."""

    label: str = MISSING
    method: str = "mws"
    affinities: str | None = None
    foreground: str = "truefg"  # truefg | fgnet
    min_sizes: list[int] | None = None  # this row's fragment sizes (null: task.min_sizes)
    store_alpha: bool = True  # false: the chosen α is not stored beside the affinities (a variant)

    def __post_init__(self) -> None:
        check_min_sizes(self.min_sizes, f"task.rows ({self.label!r}) min_sizes")


@dataclass
class Inpainter:
    inpainter: str = MISSING  # net | gaussian
    ckpt: str | None = None
    gaussian_sigma: float | None = None


@dataclass
class Table1Settings:
    """``task=table1`` (defaults in ``conf/task/table1.yaml``)."""

    name: str = MISSING
    select_split: str = MISSING
    eval_splits: list[str] = MISSING
    alphas: list[float] = MISSING
    min_sizes: list[int] = MISSING
    min_merged: int = MISSING
    fgnet_ckpt: str | None = MISSING
    affinity_nets: dict[str, str | None] = MISSING
    affinity_dirs: dict[str, str] = MISSING
    fg_thresholds: list[float] = MISSING  # FGNET rows choose their threshold among these on select_split
    inpainters: dict[str, Inpainter] = MISSING
    inpaintaff: dict[str, Any] = MISSING  # task=inpaintaff keys shared by every inpainter
    rows: list[Row] = MISSING
    metrics: dict[str, Any] = MISSING
    overlays: bool = MISSING
    figure: dict[str, Any] | None = MISSING

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("task.rows is empty: nothing to put in the table")
        check_min_sizes(self.min_sizes, "task.min_sizes")


def rows_need(rows: Sequence[Row], key: str, value: str) -> bool:
    """Whether some row's ``key`` (``affinities``, ``foreground``) is ``value``."""
    return any(getattr(r, key) == value for r in rows)


def skip_sources(t: Table1Settings) -> list:
    """The foreground sources by which the engine skips patches (``task.inpaintaff.foreground``)."""
    source = (t.inpaintaff.get("foreground") or {}).get("source")
    return source if isinstance(source, list) else [source]


def needs_fgnet(t: Table1Settings) -> bool:
    """Whether a row segments with FGNET's foreground or the engine skips patches by it."""
    return rows_need(t.rows, "foreground", "fgnet") or "dir" in skip_sources(t)


def check_checkpoints(t: Table1Settings) -> None:
    """Every checkpoint a row needs is set (null ones are named, before any work)."""
    unset = []
    if needs_fgnet(t) and not t.fgnet_ckpt:
        unset.append("task.fgnet_ckpt")
    for name, spec in t.inpainters.items():
        if name not in t.affinity_dirs and rows_need(t.rows, "affinities", name) and spec.inpainter == "net" \
                and not spec.ckpt:
            unset.append(f"task.inpainters.{name}.ckpt")
    for name, ckpt in t.affinity_nets.items():
        if rows_need(t.rows, "affinities", name) and not ckpt and name not in t.affinity_dirs:
            unset.append(f"task.affinity_nets.{name}")
    if unset:
        raise ValueError(f"set {', '.join(unset)}: the checkpoints trained for this data (or drop the rows that "
                         "use them from task.rows)")


def affinity_stages(cfg: DictConfig, t: Table1Settings, work: Path, frames: list[dict]) -> dict[str, dict]:
    """Run (or resume) FGNET, every inpainter and AFFNET; returns affinity name -> its folder and timing."""
    rows = t.rows
    top = {"data.splits.predict": frames}
    skip = dict(t.inpaintaff.get("foreground") or {})
    if needs_fgnet(t):
        run_subtask(subtask_config(cfg, "foreground", {"split": "predict", "out_dir": str(work / FGNET_DIR)},
                                   work / "logs" / "fgnet", {**top, "ckpt": t.fgnet_ckpt}))
    sources: dict[str, dict] = {}
    for name, folder in t.affinity_dirs.items():
        if rows_need(rows, "affinities", name):
            if not Path(folder).is_dir():
                raise InputError(folder, f"task.affinity_dirs.{name}: affinity folder not found")
            sources[name] = {"dir": str(folder), "kind": "auto", "reused": True}
    for name, spec in t.inpainters.items():
        if not rows_need(rows, "affinities", name) or name in sources:
            continue
        out = work / f"aff_{name}"
        task = {**t.inpaintaff, "inpainter": spec.inpainter, "out_dir": str(out),
                "foreground": {**skip, "dir": str(work / FGNET_DIR)}}
        if spec.gaussian_sigma is not None:
            task["gaussian_sigma"] = spec.gaussian_sigma
        t0 = time.perf_counter()
        result = run_subtask(subtask_config(cfg, "inpaintaff", task, work / "logs" / f"aff_{name}",
                                            {**top, "ckpt": spec.ckpt}))
        sources[name] = {"dir": str(out), "kind": "inpaintaff", **_timing(result, time.perf_counter() - t0)}
    for name, ckpt in t.affinity_nets.items():
        if not rows_need(rows, "affinities", name) or name in t.affinity_dirs:
            continue
        if name in sources:
            raise ValueError(f"task.affinity_nets: {name!r} is also a key of task.inpainters")
        out = work / f"aff_{name}"
        t0 = time.perf_counter()
        result = run_subtask(subtask_config(cfg, "affnet", {"split": "predict", "out_dir": str(out)},
                                            work / "logs" / f"aff_{name}", {**top, "ckpt": ckpt}))
        sources[name] = {"dir": str(out), "kind": result["source"], "seconds_per_frame": result["seconds_per_frame"],
                         "stage_seconds": time.perf_counter() - t0}
    return sources


def _timing(result: Mapping[str, Any], wall: float) -> dict:
    """Engine seconds per frame from the frames' own statistics (also for frames written earlier)."""
    frames = result.get("frames") or []
    engine = [f.get("stats", {}).get("seconds") for f in frames]
    engine = [s for s in engine if s is not None]
    return {"seconds_per_frame": float(np.mean(engine)) if engine else None,
            "patches_per_frame": float(np.mean([f.get("n_patches") or 0 for f in frames])) if frames else None,
            "images_per_patch": result.get("conditionals_per_patch"), "stage_seconds": wall}


def row_task(t: Table1Settings, row: Row, sources: Mapping[str, dict], work: Path,
             threshold: float | None = None) -> dict:
    """The ``task=segment_select`` settings of one table row (``threshold``: FGNET's)."""
    if row.foreground not in ("truefg", "fgnet"):
        raise ValueError(f"task.rows: foreground must be truefg or fgnet, got {row.foreground!r} (row {row.label!r})")
    task: dict[str, Any] = {
        "label": row.label, "select_split": t.select_split, "alphas": list(t.alphas),
        "min_sizes": list(row.min_sizes or t.min_sizes), "overlays": t.overlays, "metrics": t.metrics,
        "foreground": {"source": "truefg"} if row.foreground == "truefg" else
        {"source": "dir", "dir": str(work / FGNET_DIR),
         "threshold": t.fg_thresholds[0] if threshold is None else threshold},
        "crop": t.inpaintaff.get("crop"),  # score every row on the window the affinities cover
    }
    if row.method == "cc":
        task["method"] = "cc"
        return task
    if row.affinities not in sources:
        known = sorted({*t.inpainters, *t.affinity_nets, *t.affinity_dirs})
        raise ValueError(f"task.rows: row {row.label!r} reads affinities {row.affinities!r}, which is not a key of "
                         f"task.inpainters, task.affinity_nets or task.affinity_dirs ({known})")
    source = sources[row.affinities]
    task["affinities"] = {"source": "dir", "dir": source["dir"], "kind": source["kind"]}
    return task


def row_settings(base: Mapping[str, Any], task: Mapping[str, Any], out: Path, seed: int) -> SegmentSelectSettings:
    """A row's ``segment_select`` settings: the group's defaults (``base``, read once per table, its
    interpolations unresolved) updated with ``task``, resolved as if ``out`` were the run's output
    folder and ``seed`` its seed (what the group's ``${paths.output_dir}`` and ``${seed}`` name)."""
    root = OmegaConf.merge({"paths": {"output_dir": str(out)}, "seed": int(seed), "task": base}, {"task": dict(task)})
    return segment_settings(root.task)


def select_row(base: Mapping[str, Any], seed: int, t: Table1Settings, row: Row, sources: Mapping[str, dict],
               work: Path, dm: Any, out: Path) -> dict:
    """α and the fragment size (mws rows) and FGNET's threshold (FGNET rows) chosen on the selection
    split: the best pooled SEG over the whole grid; with its segment_select settings and every grid point."""
    thresholds = list(t.fg_thresholds) if row.foreground == "fgnet" else [None]
    if not thresholds:
        raise ValueError("task.fg_thresholds is empty: give FGNET rows at least one threshold")
    chosen: dict[str, Any] = {}
    grid: list[dict] = []
    for threshold in thresholds:
        sub = row_settings(base, row_task(t, row, sources, work, threshold), out, seed)
        inputs = load_inputs(dm, t.select_split, sub, seed)
        if row.method == "mws":
            choice = select_alpha(inputs, sub, Path(dm.root) / dm.dataset)
            alpha, min_size, selection = choice["alpha"], choice["min_size"], choice["rows"]
            seg = max(r["seg"] for r in selection)
        else:  # CC has no α; its score on the selection split is shown all the same
            alpha, min_size, selection = 0.0, 0, []
            labels, scores, seconds = evaluate(inputs, resolved_task(sub, inputs), alpha)
            seg = summarize(inputs, labels, scores, seconds)[1]["seg"]
        grid += [{"threshold": threshold, **{k: r[k] for k in ("alpha", "min_size", "seg")}} for r in selection]
        if not chosen or seg > chosen["seg"]:
            chosen = {"seg": seg, "alpha": alpha, "min_size": min_size, "threshold": threshold, "sub": sub,
                      "selection": [{"alpha": r["alpha"], "seg": r["seg"]} for r in selection
                                    if r["min_size"] == min_size]}
    if len(thresholds) > 1 and chosen["threshold"] in (min(thresholds), max(thresholds)):
        log.warning("%s: FGNET threshold %g lies at the edge of task.fg_thresholds %s", row.label,
                    chosen["threshold"], thresholds)
    return {**chosen, "grid": grid}


def run_row(base: Mapping[str, Any], seed: int, t: Table1Settings, row: Row, sources: Mapping[str, dict],
            work: Path, dm: Any, n_merged: int | None = None) -> dict:
    """α (and FGNET's threshold) on the selection split, then each evaluation split segmented with
    them; the row's summary."""
    out = work / "rows" / row_slug(row.label)
    result: dict[str, Any] = {"label": row.label, "method": row.method, "splits": {}}
    select = t.select_split
    chosen = select_row(base, seed, t, row, sources, work, dm, out)
    alpha, min_size, threshold, sub = chosen["alpha"], chosen["min_size"], chosen["threshold"], chosen["sub"]
    result["seg_" + select] = chosen["seg"]
    if threshold is not None:
        result["threshold"] = threshold
    if row.method == "mws":
        result.update(alpha=alpha, min_size=min_size, grid=chosen["grid"], selection=chosen["selection"])
    for split in t.eval_splits:
        split_task = row_settings(base, {**row_task(t, row, sources, work, threshold), "split": split,
                                         "mws": {"min_size": min_size}}, out / split, seed)
        inputs = load_inputs(dm, split, split_task, seed)
        task = resolved_task(split_task, inputs)
        labels, scores, seconds = evaluate(inputs, task, alpha)
        written = write_outputs(out / split, task, dm, split, alpha, inputs, labels, scores, seconds,
                                {"selected_on": select if row.method == "mws" else None})
        entry = {"seg": written["seg"], "n_gt": written["n_gt"], "detection": written["detection"],
                 "output_dir": str(out / split),
                 "mws_seconds_per_frame": float(np.mean(seconds)) if seconds else None}
        if row.method == "mws":
            entry["curve"] = [{k: r[k] for k in ("alpha", "seg", "n_gt")}
                              for r in sweep(inputs, task, t.alphas, [min_size])]
        result["splits"][split] = entry
    source = sources.get(row.affinities) or {}
    if row.method == "mws" and source and row.store_alpha and not source.get("reused"):
        # (a folder another run wrote keeps that run's α: this run only reads it)
        record_alpha_selection(source["dir"], row.label, sub.foreground.source, alpha, result["selection"],
                               select, n_merged, min_size, threshold)
    return result


def comparison_figure(path: Path, results: Sequence[Mapping], dm: Any, spec: Mapping[str, Any]) -> Path | None:
    """The masks of some rows side by side on one crop of one frame, errors marked against GT."""
    from inpaintaff.io import ctc

    split, frame, seq = str(spec["split"]), int(spec["frame"]), str(spec.get("seq", "01"))
    ref = next((r for r in dm.frames(split) if r.frame == frame and r.seq == seq), None)
    chosen = [r for r in results if r["label"] in spec["rows"] and split in r["splits"]]
    if ref is None or not chosen:
        log.warning("task.figure: frame %s/%d of split %s or its rows not found: no comparison figure", seq, frame,
                    split)
        return None
    y0, x0, h, w = (int(v) for v in spec["crop"])
    sl = (slice(y0, y0 + h), slice(x0, x0 + w))
    panels = []
    for r in chosen:
        res = Path(r["splits"][split]["output_dir"]) / "res"
        how = "" if r["method"] == "cc" else f", α {r['alpha']:g}"
        panels.append((f"{r['label']}{how}", ctc.read_labels(ctc.res_path(res, dm.dataset, seq, frame))[sl]))
    return side_by_side(path, dm.load_image(ref)[sl], dm.load_labels(ref)[sl], panels,
                        f"{seq}/t{frame:03d} [{y0}:{y0 + h}, {x0}:{x0 + w}]: red false merge, yellow false split")


def table_markdown(results: Sequence[Mapping], t: Table1Settings) -> str:
    """Rows × (α and min size, SEG on the selection split, SEG on each evaluation split)."""
    sel, evals = t.select_split, t.eval_splits
    head = ["Method", f"α, min size[, FGNET threshold] (chosen on {sel})", f"SEG {sel}", *[f"SEG {s}" for s in evals]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in results:
        how = [] if r["method"] == "cc" else [f"{r['alpha']:g}", f"{r['min_size']}"]
        how += [] if r.get("threshold") is None else [f"{r['threshold']:g}"]
        cells = [r["label"], ", ".join(how) or "—",
                 _fmt(r.get("seg_" + sel)), *[_fmt(r["splits"].get(s, {}).get("seg")) for s in evals]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def table_settings(cfg: DictConfig, cls: type = Table1Settings) -> Any:
    """``cfg.task`` typed (``cls``: Table1Settings or a task built on it) and checked by itself."""
    return typed(cfg.task, cls)


def run(cfg: DictConfig, t: Table1Settings | None = None, dm: Any = None) -> dict:
    """The table of ``cfg.task`` (or of ``t`` and the data module ``dm``, which a task built on this
    one has filled in and loaded)."""
    t = table_settings(cfg) if t is None else t
    check_checkpoints(t)
    work = Path(cfg.paths.output_dir).resolve()
    select, evals = t.select_split, t.eval_splits
    dm = load_data(cfg.data) if dm is None else dm
    frames = predict_spec(dm, [select, *evals])
    sources = affinity_stages(cfg, t, work, frames)
    n_merged = count_merged_objects(dm, select, t.inpaintaff.get("crop"))  # the window that is scored
    if n_merged < t.min_merged:
        log.warning("the %s frames hold only %d GT objects that touch another: too few merges for the chosen α "
                    "to mean much (task.min_merged=%s); add frames with touching nuclei to that split",
                    select, n_merged, t.min_merged)
    base = OmegaConf.to_container(task_group("segment_select"), resolve=False)  # every row's defaults, read once
    results = []
    for row in t.rows:
        r = {**run_row(base, int(cfg.seed), t, row, sources, work, dm, n_merged), "affinities": row.affinities}
        results.append(r)
        log.info("%s: %s", row.label, {s: v["seg"] for s, v in r["splits"].items()})
    md = table_markdown(results, t)
    header = (f"SEG of {dm.dataset}: α chosen on `{select}` ({_frames(dm, select)}; {n_merged} GT objects touch "
              f"another), applied to {', '.join(f'`{s}` ({_frames(dm, s)})' for s in evals)}.\n\n")
    (work / "table1.md").write_text(header + md)
    csv_rows = [{"method": r["label"], "alpha": r.get("alpha"), "min_size": r.get("min_size"),
                 "fg_threshold": r.get("threshold"),
                 f"seg_{select}": r.get("seg_" + select),
                 **{f"seg_{s}": r["splits"].get(s, {}).get("seg") for s in evals}} for r in results]
    write_csv(work / "table1.csv", csv_rows)
    plot = plot_alpha_curves(work / "seg_vs_alpha.png", results, [select, *evals], select)
    images = {"table1/seg_vs_alpha": plot}
    if t.figure:
        fig = comparison_figure(work / "comparison.png", results, dm, t.figure)
        if fig:
            images["table1/comparison"] = fig
    scalars = {f"table1/{row_slug(r['label'])}/seg_{s}": v["seg"] for r in results for s, v in r["splits"].items()
               if v["seg"] is not None}
    log_to_tensorboard(work / "tensorboard", images=images, scalars=scalars)
    report = {"dataset": dm.dataset, "select_split": select, "eval_splits": evals, "n_merged_select": n_merged,
              "frames": {s: _frames(dm, s) for s in [select, *evals]}, "affinities": sources, "rows": results,
              "markdown": md}
    write_json(work / "table1.json", report)
    log.info("Table 1 (%s):\n%s%s", work, header, md)
    return report


def _frames(dm: Any, split: str) -> str:
    return ", ".join(f"{r.seq}/t{r.frame:03d}" for r in dm.frames(split))
