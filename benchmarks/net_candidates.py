"""Inpainting nets judged through the engine: SEG on the validation frames, not their loss.

    .venv/bin/python benchmarks/net_candidates.py checkpoints/hela_inpaint_cpu.ckpt runs/x/checkpoints/*.ckpt

For each checkpoint, runs ``task=inpaintaff`` on the validation frames of ``data=shared_hela``
(whole frames, patches without TRUEFG skipped: the pairs that SEG with TRUEFG reads are all
there) and the α sweep of ``task=segment_select`` on them, α and the fragment size chosen
together as ``experiment=hela_table1`` does; prints the best pooled SEG, its α and the curve, side
by side. ``--test-frames`` are also split and scored with the α chosen on validation;
``--engine-overrides`` change the engine (e.g. ``task.hierarchies_per_patch=2``). Affinities
already written in ``--out`` are reused (same settings).
Writes ``net_candidates.json`` and ``net_candidates.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0]

from bench_cli import run_cli  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)


def spec(frames: list[int]) -> str:
    """Frames of sequence 01 as a ``data.splits.*`` override value."""
    return "[{seq:'01',frames:[" + ",".join(map(str, frames)) + "]}]"


def judge(ckpt: Path, name: str, args) -> dict:
    d = Path(args.out) / name
    d.mkdir(parents=True, exist_ok=True)
    aff = d / "affinities"
    engine_s = run_cli(["predict.py", "task=inpaintaff", "data=shared_hela", f"ckpt={ckpt.resolve()}",
                        f"data.splits.predict={spec(args.frames + args.test_frames)}",
                        "task.foreground.source=truefg", f"task.out_dir={aff}", f"task.torch_threads={args.threads}",
                        "task.pictures=false", f"hydra.run.dir={d / 'engine'}", *args.engine_overrides],
                       d / "engine.log")
    alphas = "[" + ",".join(f"{a:g}" for a in ALPHAS) + "]"
    test = args.test_frames or args.frames
    run_cli(["predict.py", "task=segment_select", "data=shared_hela", f"data.splits.val={spec(args.frames)}",
         f"data.splits.test={spec(test)}", "task.select_split=val", "task.split=test", f"task.alphas={alphas}",
         "task.affinities.source=dir", f"task.affinities.dir={aff}", "task.min_sizes=[0,50,100,150,200,300]",
         "task.overlays=false", f"hydra.run.dir={d / 'segment'}"], d / "segment.log")
    r = json.loads((d / "segment" / "segment_result.json").read_text())
    curve = [{"alpha": s["alpha"], "seg": s["seg"]} for s in r["alpha_selection"] if s["min_size"] == r["min_size"]]
    return {"name": name, "ckpt": str(ckpt), "seg": max(c["seg"] for c in curve), "alpha": r["alpha"],
            "min_size": r["min_size"], "seg_test": r["seg"] if args.test_frames else None, "n_gt": r["n_gt"],
            "curve": curve, "engine_seconds": engine_s}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ax.plot([c["alpha"] for c in r["curve"]], [c["seg"] for c in r["curve"]], "o-", ms=3,
                label=f"{r['name']}: {r['seg']:.3f} at α {r['alpha']:g}")
    ax.set_xscale("log")
    ax.set_xlabel("α")
    ax.set_ylabel("SEG (validation frames, TRUEFG)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+", type=Path)
    ap.add_argument("--names", nargs="*", help="one name per checkpoint (default: file stem and parent)")
    ap.add_argument("--frames", type=int, nargs="+", default=[25, 44, 54], help="validation frames of sequence 01")
    ap.add_argument("--test-frames", type=int, nargs="*", default=[],
                    help="also score these frames with the α chosen on --frames (e.g. 14 21 39 77)")
    ap.add_argument("--engine-overrides", nargs="*", default=[], help="extra task=inpaintaff overrides")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench_net_candidates")
    args = ap.parse_args()
    names = args.names or [f"{c.parent.parent.name}_{c.stem}" if c.parent.name == "checkpoints" and
                           c.parent.parent != ROOT else c.stem for c in args.ckpts]
    if len(names) != len(args.ckpts):
        sys.exit("give one --names entry per checkpoint")
    results = []
    for ckpt, name in zip(args.ckpts, names):
        r = judge(ckpt, name, args)
        results.append(r)
        test = "" if r["seg_test"] is None else f"; test frames with it: SEG {r['seg_test']:.4f}"
        print(f"{name}: SEG {r['seg']:.4f} at α {r['alpha']:g}, min size {r['min_size']}{test} "
              f"({r['engine_seconds']:.0f} s engine); val curve "
              + " ".join(f"{c['alpha']:g}:{c['seg']:.3f}" for c in r["curve"]), flush=True)
    out = Path(args.out)
    (out / "net_candidates.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "net_candidates.png")
    best = max(results, key=lambda r: r["seg"])
    print(f"best: {best['name']} ({best['seg']:.4f}); figures in {out}")


if __name__ == "__main__":
    main()
