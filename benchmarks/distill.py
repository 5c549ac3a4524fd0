"""DISTILL against its teacher, the split engine: seconds per 700×1100 frame and SEG, side by side.

    .venv/bin/python benchmarks/distill.py [--n-frames 1 2 4 8] [--engine-aff runs/hela_table1/aff_net]

For each N, trains a student (``train.py experiment=hela_distill``) on the teacher's affinities of
the first N unlabeled frames, predicts the Table 1 frames with it (``task=affnet``, timed per
frame), chooses α (and the fragment size) on the validation frames and scores the test frames
with TRUEFG (``task=segment_select``). The engine's row scores the engine's affinities of the
same frames (those ``experiment=hela_table1`` wrote, ``--engine-aff``) the same way, and times the engine
here, on a seeded sample of one test frame's patches, projected to that frame's patch count.
Students already trained in ``--out`` are reused. Prints a table; writes ``distill.json`` and
``distill_seg_vs_frames.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_cli import run_cli  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)

from inpaintaff.igm.split import EngineConfig, SplitEngine  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import PatchDataModule  # noqa: E402

TEACHER_FRAMES = [1, 9, 20, 31, 41, 61, 72, 84]
CKPT = ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"
MIN_SIZES = "[0,50,100,150,200,300]"  # chosen on val with α, as experiment=hela_table1 does




def frames_arg(frames: list[int]) -> str:
    return f"[{{seq:'01',frames:[{','.join(map(str, frames))}]}}]"


def score(aff_dir: Path, out: Path, threads: int) -> dict:
    """α chosen on val, SEG on test (TRUEFG), from the affinities in ``aff_dir``."""
    run_dir = out / "segment"
    run_cli(["predict.py", "task=segment_select", "data=shared_hela", "task.affinities.source=dir",
         f"task.affinities.dir={aff_dir}", "task.overlays=false", f"task.min_sizes={MIN_SIZES}",
         f"hydra.run.dir={run_dir}"], out / "segment.log")
    r = json.loads((run_dir / "segment_result.json").read_text())
    return {"alpha": r["alpha"], "min_size": r["min_size"], "seg_test": r["seg"],
            "seg_val": max(s["seg"] for s in r["alpha_selection"])}


def student(n: int, args, out: Path) -> dict:
    """Train (or reuse) the student on N frames, predict the Table 1 frames, score it."""
    d = out / f"student_{n}{args.tag}"
    d.mkdir(parents=True, exist_ok=True)
    ckpt = d / "train" / "checkpoints" / "last.ckpt"
    train_s = None
    if not ckpt.is_file():
        train_s = run_cli(["train.py", "experiment=hela_distill", f"data.splits.raw={frames_arg(TEACHER_FRAMES[:n])}",
                           f"data.teacher_dir={args.teacher}", "trainer.enable_progress_bar=false",
                           f"trainer.max_steps={args.steps}", f"hydra.run.dir={d / 'train'}", *args.train_overrides],
                          d / "train.log")
    aff = d / "aff"
    run = d / "predict"
    run_cli(["predict.py", "task=affnet", "data=shared_hela", f"ckpt={ckpt}", "task.split=predict",
             f"data.splits.predict={frames_arg(args.eval_frames)}", f"task.out_dir={aff}", "task.overwrite=true",
             "trainer.accelerator=cpu", f"hydra.run.dir={run}"], d / "predict.log")
    seconds = [float(line.rsplit("(", 1)[1].split(" s)")[0]) for line in (run / "predict.log").read_text().splitlines()
               if "DISTILL affinities" in line]
    return {"n_frames": n, "train_seconds": train_s, "seconds_per_frame": float(np.mean(seconds)),
            **score(aff, d, args.threads)}


def engine_seconds(args) -> dict:
    """The engine's seconds for one whole frame: a seeded sample of its patches, timed, projected."""
    import hydra
    from hydra import compose, initialize_config_dir

    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("predict", ["data=shared_hela", f"data.splits.predict={frames_arg([args.time_frame])}"])
    data = hydra.utils.instantiate(cfg.data)
    fg_dir = ROOT / "runs" / "hela_table1" / "fgnet"
    spec = {"source": ["truefg", "dir"], "dir": str(fg_dir)} if fg_dir.is_dir() else "truefg"
    pdm = PatchDataModule(data, 64, 16, foreground=spec)
    pdm.setup()
    info = pdm.frames[0]
    rng = np.random.default_rng(0)
    ids = sorted(rng.choice(len(info.todo), min(args.engine_sample, len(info.todo)), replace=False))
    patches = torch.stack([torch.from_numpy(pdm.images[0][y:y + 64, x:x + 64].copy())[None]
                           for y, x in (info.positions[info.todo[i]] for i in ids)]).float()
    engine = SplitEngine(load_net_inpainter(CKPT, "cpu"), **EngineConfig().__dict__)
    t0 = time.perf_counter()
    engine.run(patches, [int(i) for i in ids])
    per_patch = (time.perf_counter() - t0) / len(ids)
    return {"frame": args.time_frame, "patches": len(info.todo), "sample": len(ids), "seconds_per_patch": per_patch,
            "seconds_per_frame": per_patch * len(info.todo)}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["students"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r["n_frames"] for r in rows], [r["seg_test"] for r in rows], "o-", label="DISTILL + TRUEFG (test)")
    ax.axhline(report["engine"]["seg_test"], color="C1", ls="--", label="engine (teacher) + TRUEFG (test)")
    if report.get("cc_test") is not None:
        ax.axhline(report["cc_test"], color="gray", ls=":", label="CC on TRUEFG (test)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("unlabeled frames the teacher labeled")
    ax.set_ylabel("SEG")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("student SEG against teacher frames", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-frames", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--teacher", default=str(ROOT / "runs" / "hela_distill" / "teacher"))
    ap.add_argument("--engine-aff", default=str(ROOT / "runs" / "hela_table1" / "aff_net"))
    ap.add_argument("--eval-frames", type=int, nargs="+", default=[14, 21, 25, 39, 44, 54, 77])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-frame", type=int, default=77)
    ap.add_argument("--engine-sample", type=int, default=24)
    ap.add_argument("--out", default="runs/bench_distill")
    ap.add_argument("--tag", default="", help="suffix of the student folders (a variant of the recipe)")
    ap.add_argument("--train-overrides", nargs="*", default=[], help="extra train.py overrides (model.loss=bce)")
    args = ap.parse_args()
    # Every command it runs (training, the student's predictions) uses as many threads as the
    # engine's timing here, so the speed-up compares like with like.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine").mkdir(exist_ok=True)
    report = {"engine": {**score(Path(args.engine_aff), out / "engine", args.threads), **engine_seconds(args)}}
    cc_dir = out / "cc"
    run_cli(["predict.py", "task=segment", "task.method=cc", "task.split=test", "data=shared_hela",
         "task.overlays=false", f"hydra.run.dir={cc_dir}"], out / "cc.log")
    report["cc_test"] = json.loads((cc_dir / "segment_result.json").read_text())["seg"]
    e = report["engine"]
    print(f"engine (teacher), shipped net, {args.threads} threads: {e['seconds_per_patch']:.2f} s per patch on "
          f"{e['sample']} patches of t{e['frame']:03d} -> {e['seconds_per_frame']:.0f} s for its {e['patches']} "
          f"patches; SEG test {e['seg_test']:.3f} (α {e['alpha']:g}, min size {e['min_size']} chosen on val; val "
          f"{e['seg_val']:.3f})")
    print(f"CC on TRUEFG: SEG test {report['cc_test']:.3f}")
    report["students"] = []
    for n in args.n_frames:
        r = student(n, args, out)
        r["speedup"] = e["seconds_per_frame"] / r["seconds_per_frame"]
        report["students"].append(r)
        print(f"student on {n} frame(s): {r['seconds_per_frame']:.2f} s per frame ({r['speedup']:.0f}x faster); "
              f"SEG test {r['seg_test']:.3f} (α {r['alpha']:g}, min size {r['min_size']}; val {r['seg_val']:.3f}); "
              f"SEG against engine {r['seg_test'] - e['seg_test']:+.3f}")
    (out / "distill.json").write_text(json.dumps(report, indent=2))
    plot(report, out / "distill_seg_vs_frames.png")
    print(f"figures in {out / 'distill.json'} and {out / 'distill_seg_vs_frames.png'}")


if __name__ == "__main__":
    main()
