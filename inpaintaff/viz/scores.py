"""Plots of scores: SEG against α (sweeps, Table 1's rows), detection accuracy over IoU thresholds
(the paper's Fig. 5), SEG against labeled instances (Fig. 4). Each writes a PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintaff.metrics.detection import ACCURACY_KEY
from inpaintaff.viz.figures import plt, save_figure


def _axes(ax: Any, xlabel: str, ylabel: str, title: str, legend: str | None, log_x: bool = False,
          unit_y: bool = False, fontsize: int = 8, xticks: Sequence[float] | None = None) -> None:
    """Labels, grid, title and legend of one panel (``unit_y``: scores in [0, 1]; ``xticks``: the
    values to label on a log axis, plainly written)."""
    if log_x:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if xticks:
            ax.set_xticks(sorted(set(xticks)))
    if unit_y:
        ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, loc=legend)
    ax.set_title(title, fontsize=9)


def plot_seg_vs_alpha(path: str | Path, rows: Sequence[dict[str, Any]], title: str = "") -> Path:
    """SEG (and detection accuracy at IoU 0.5) against α, one line per label/dataset/split."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("seg") is not None and r.get("alpha") is not None:
            groups.setdefault((r["label"], r["dataset"], r["split"]), []).append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (label, dataset, split), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["alpha"])
        a = [r["alpha"] for r in rs]
        line = ax.plot(a, [r["seg"] for r in rs], "o-", label=f"SEG {label} ({dataset}/{split})")[0]
        det = [r[ACCURACY_KEY] for r in rs]
        if all(d is not None for d in det):
            ax.plot(a, det, "s--", color=line.get_color(), alpha=0.6, label=f"det. acc. IoU>0.5 ({split})")
        best = max(rs, key=lambda r: r["seg"])
        ax.annotate(f"{best['seg']:.3f}", (best["alpha"], best["seg"]), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    _axes(ax, "α (weight of repulsive edges)", "score", title or "α sweep", "lower right", unit_y=True, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_alpha_curves(path: Path, results: Sequence[Mapping], splits: Sequence[str], select_split: str) -> Path:
    """SEG against α: one panel per split, one line per row; the chosen α marked on every line."""
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4.2), squeeze=False)
    for ax, split in zip(axes[0], splits):
        ticks: list[float] = []
        for i, r in enumerate(results):
            color = f"C{i}"
            if r["method"] == "cc":
                seg = r["splits"].get(split, {}).get("seg") if split != select_split else r.get("seg_" + split)
                if seg is not None:
                    ax.axhline(seg, color=color, ls=":", label=f"{r['label']} {seg:.3f}")
                continue
            pts = r["selection"] if split == select_split else r["splits"].get(split, {}).get("curve", [])
            pts = [p for p in pts if p["seg"] is not None]
            if not pts:
                continue
            a = [p["alpha"] for p in pts]
            ticks += a
            ax.plot(a, [p["seg"] for p in pts], "o-", ms=3, color=color, label=r["label"])
            at = [p["seg"] for p in pts if p["alpha"] == r["alpha"]]
            if at:
                ax.plot([r["alpha"]], at, "*", ms=12, color=color)
        _axes(ax, "α (weight of repulsive edges); ★ chosen on " + select_split, "SEG",
              f"{split} frames" + (" (α chosen here)" if split == select_split else ""), "lower left", log_x=True,
              fontsize=7, xticks=ticks)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_seg_vs_labels(path: str | Path, summary: Sequence[Mapping[str, Any]], split: str, title: str = "") -> Path:
    """Mean SEG on ``split`` against mean labeled instances, one line per method; bars: seeds' std.

    ``summary`` rows: method, n_labeled, n_labeled_std, seg, seg_std, n_seeds (one per budget and method).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in summary))
    for i, method in enumerate(methods):
        pts = sorted((r for r in summary if r["method"] == method and r["seg"] is not None),
                     key=lambda r: r["n_labeled"])
        if not pts:
            continue
        ax.errorbar([p["n_labeled"] for p in pts], [p["seg"] for p in pts],
                    yerr=[p["seg_std"] for p in pts], xerr=[p["n_labeled_std"] for p in pts],
                    fmt="o-" if "CC" not in method else "o:", ms=4, capsize=3, color=f"C{i}", label=method)
    _axes(ax, "labeled instances FGNET and AFFNET were trained on", f"SEG ({split} frames)",
          title or "SEG against the label budget (mean ± std over seeds)", "lower right", log_x=True)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_detection_over_iou(path: str | Path, panels: Mapping[str, Mapping[str, Sequence[Mapping[str, Any] | None]]],
                            ) -> Path:
    """Detection accuracy TP/(TP+FP+FN) over IoU thresholds (the paper's Fig. 5): one panel per key of
    ``panels`` (its title), one line per method; several detection dicts (thresholds, accuracy) for a
    method (seeds) are drawn as mean ± std."""
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items() or [("no results", {})]):
        for i, (method, dets) in enumerate(curves.items()):
            dets = [d for d in dets if d]
            if not dets:
                continue
            th = np.asarray(dets[0]["thresholds"], float)
            acc = np.asarray([d["accuracy"] for d in dets], float)
            mean, std = acc.mean(0), acc.std(0)
            seeds = f" ({len(dets)} seeds)" if len(dets) > 1 else ""
            ax.plot(th, mean, "o-" if "CC" not in method else "o:", ms=4, color=f"C{i}", label=method + seeds)
            if len(dets) > 1:
                ax.fill_between(th, mean - std, mean + std, color=f"C{i}", alpha=0.15)
        _axes(ax, "IoU threshold", "detection accuracy TP/(TP+FP+FN)", title, "lower left", unit_y=True)
    fig.tight_layout()
    return save_figure(fig, path)
