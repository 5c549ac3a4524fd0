"""Overhead of our mutex-watershed layer against a direct bioimage-cpp call, and metric timings.

One 700×1100 frame, 12 offsets: the shared HeLa GT frame 052 (affinities from its labels plus
Gaussian noise) when ../shared/data is present, else synthetic ellipses. Both paths run in the
same process, interleaved, and the medians are compared:

- direct: ``bioimage_cpp.segmentation.mutex_watershed(weights, offsets, 2, mask=fg)`` on weights
  computed beforehand (not timed);
- ours: ``inpaintaff.segment.mws.mutex_watershed(aff, alpha, foreground=fg, valid=valid)`` from
  affinities: weights, edge mask, NaN check, solver, consecutive relabelling.

    .venv/bin/python benchmarks/segment_overhead.py [--repeats 9] [--noise 0.2] [--alpha 0.7]

Target: overhead <= 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bioimage_cpp.segmentation import mutex_watershed as bic_mutex_watershed

from inpaintaff.io import ctc
from inpaintaff.metrics.ctc import seg_frame
from inpaintaff.metrics.detection import detection_frame
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.segment.baselines import connected_components
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.mws import mutex_watershed, mws_weights
from inpaintaff.segment.pipeline import score
from inpaintaff.segment.sources import fill_gaps
from inpaintaff.utils.resolvers import shared_data_dir

SHARED = shared_data_dir()


def load_labels() -> tuple[np.ndarray, str]:
    """HeLa GT frame 052 if present, else 120 random ellipses on a 700x1100 frame."""
    try:
        return ctc.read_labels(ctc.gt_seg_path(SHARED, "Fluo-N2DL-HeLa", "01", 52)), "HeLa 01/man_seg052"
    except ValueError:
        rng = np.random.default_rng(0)
        lab = np.zeros((700, 1100), dtype=np.int64)
        yy, xx = np.mgrid[:700, :1100]
        for k in range(1, 121):
            cy, cx, ry, rx = rng.uniform(0, 700), rng.uniform(0, 1100), rng.uniform(8, 20), rng.uniform(8, 20)
            lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = k
        return lab, "synthetic ellipses (shared HeLa not found)"


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--alpha", type=float, default=0.7)
    args = p.parse_args()

    labels, name = load_labels()
    aff, valid = affinities_from_labels(fill_gaps(labels))
    rng = np.random.default_rng(0)
    aff = np.clip(aff + rng.normal(0, args.noise, aff.shape).astype(np.float32), 0, 1)
    fg = true_foreground(labels)
    weights = mws_weights(aff, args.alpha)
    print(f"frame: {name}, shape {labels.shape}, {labels.max()} objects, {len(OFFSETS)} offsets, "
          f"foreground {fg.mean():.1%}, noise {args.noise}, alpha {args.alpha}")

    # Warm-up (imports, allocations), then interleaved repeats.
    bic_mutex_watershed(weights, OFFSETS, 2, mask=fg)
    mutex_watershed(aff, args.alpha, foreground=fg, valid=valid)
    t_direct, t_ours, t_ours_novalid = [], [], []
    for _ in range(args.repeats):
        t, direct = timed(bic_mutex_watershed, weights, OFFSETS, 2, mask=fg)
        t_direct.append(t)
        t, ours = timed(mutex_watershed, aff, args.alpha, foreground=fg, valid=valid)
        t_ours.append(t)
        t, _ = timed(mutex_watershed, aff, args.alpha, foreground=fg)
        t_ours_novalid.append(t)
    print(f"\nmutex watershed ({args.repeats} interleaved repeats; median, and min as the least disturbed run)")
    print(f"  {'':40s} {'median':>9s} {'min':>9s}  {'ratio (median)':>14s} {'ratio (min)':>11s}")
    d_med, d_min = statistics.median(t_direct), min(t_direct)
    for label, ts in (
        ("direct bioimage-cpp (weights given)", t_direct),
        ("ours from affinities, with valid mask", t_ours),
        ("ours from affinities, no valid mask", t_ours_novalid),
    ):
        med, lo = statistics.median(ts), min(ts)
        print(f"  {label:40s} {1e3 * med:7.1f}ms {1e3 * lo:7.1f}ms  {med / d_med:14.3f} {lo / d_min:11.3f}")
    print("  target: overhead <= +10%")
    pairs = np.unique(np.stack([np.asarray(direct, np.int64)[fg], ours[fg]]), axis=1)
    same = pairs.shape[1] == len(np.unique(pairs[0])) == len(np.unique(pairs[1]))
    print(f"  same partition as the direct call: {same} ({ours.max()} segments)")

    cc = connected_components(fg)
    timings = {}
    for label, fn in (
        ("SEG (one frame)", lambda: seg_frame(labels, ours)),
        ("detection, 9 IoU thresholds", lambda: detection_frame(labels, ours, np.arange(0.1, 1.0, 0.1))),
        ("SEG + detection (one overlap table)", lambda: score(labels, ours, np.arange(0.1, 1.0, 0.1))),
        ("connected components (baseline)", lambda: connected_components(fg)),
        ("TRUEFG from labels", lambda: true_foreground(labels)),
    ):
        fn()
        timings[label] = statistics.median(timed(fn)[0] for _ in range(args.repeats))
    print("\nmetrics and baselines (median)")
    for label, t in timings.items():
        print(f"  {label:38s} {1e3 * t:8.1f} ms")
    print(f"\nSEG: ours {seg_frame(labels, ours).seg:.4f}, CC on TRUEFG {seg_frame(labels, cc).seg:.4f}")


if __name__ == "__main__":
    main()
