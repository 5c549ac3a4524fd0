"""Plots of the label-budget experiment: SEG against labeled instances (the paper's Fig. 4) and
detection accuracy over IoU thresholds at one budget (Fig. 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintaff.viz.figures import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_seg_vs_labels(path: str | Path, summary: Sequence[Mapping[str, Any]], split: str, title: str = "") -> Path:
    """Mean SEG on ``split`` against mean labeled instances, one line per method; bars: seeds' std.

    ``summary`` rows: method, n_labeled, n_labeled_std, seg, seg_std, n_seeds (one per budget and method).
    """
    plt = _pyplot()
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
    ax.set_xscale("log")
    ax.set_xlabel("labeled instances FGNET and AFFNET were trained on")
    ax.set_ylabel(f"SEG ({split} frames)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "SEG against the label budget (mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_detection_over_iou(path: str | Path, curves: Mapping[str, Sequence[Mapping[str, Any]]],
                            title: str = "") -> Path:
    """Detection accuracy TP/(TP+FP+FN) over IoU thresholds, mean ± std over seeds, per method.

    ``curves``: method -> one detection dict (thresholds, accuracy) per seed.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (method, dets) in enumerate(curves.items()):
        dets = [d for d in dets if d]
        if not dets:
            continue
        th = np.asarray(dets[0]["thresholds"], float)
        acc = np.asarray([d["accuracy"] for d in dets], float)
        mean, std = acc.mean(0), acc.std(0)
        ax.plot(th, mean, "o-" if "CC" not in method else "o:", ms=4, color=f"C{i}",
                label=f"{method} ({len(dets)} seed{'s' if len(dets) > 1 else ''})")
        ax.fill_between(th, mean - std, mean + std, color=f"C{i}", alpha=0.15)
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("detection accuracy TP/(TP+FP+FN)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
