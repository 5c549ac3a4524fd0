"""The quick-start main job (`make demo`): the whole pipeline on the embedded synthetic data.

Each step is one of the project's own command lines, run as a subprocess, so the demo does
exactly what a user types. Outputs go under ``runs/demo`` (``--out``); the last step prints the
paper's Table 1 layout for the synthetic data.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from inpaintaff.utils.resolvers import PROJECT_DIR

VAL = "[{seq:'02',frames:[0,1]}]"
TEST = "[{seq:'02',frames:[2,3]}]"


def _run(step: str, args: list[str]) -> None:
    cmd = [sys.executable, *args]
    print(f"\n=== {step}\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_DIR, check=True)
    print(f"=== {step}: done in {time.perf_counter() - t0:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="folder for all demo outputs")
    parser.add_argument("--train-steps", type=int, default=60)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    data = f"paths.data_dir={out}/data"

    def run_dir(step: str) -> str:
        return f"hydra.run.dir={out}/{step}"

    frames = "data.splits.predict=[{seq:'02',frames:[0,1,2,3]}]"
    splits = [f"data.splits.val={VAL}", f"data.splits.test={TEST}"]
    aff_dir, fg_dir = f"{out}/inpaintaff/affinities", f"{out}/foreground/foreground"
    supervised = ["data.train_mode=labeled", "data.max_instances=50", "data.label_frames=1", "data.crop_size=64",
                  "trainer=cpu", "trainer.max_steps=300", "trainer.max_epochs=-1", "data.splits.val=[]", data]
    steps: list[tuple[str, list[str]]] = [
        ("train the inpainting net (CPU preset) on the synthetic nuclei, self-supervised",
         ["train.py", "model=inpaint_cpu", "trainer=cpu", f"trainer.max_steps={args.train_steps}",
          "trainer.max_epochs=-1", "data.crop_size=64", "data.samples_per_epoch=240", "data.val_samples=16",
          data, run_dir("train")]),
        ("train FGNET on at most 50 labeled nuclei (the paper's label budget)",
         ["train.py", "model=fgnet_cpu", *supervised, run_dir("fgnet")]),
        ("train AFFNET, the supervised affinity baseline, on the same nuclei",
         ["train.py", "model=affnet_cpu", *supervised, run_dir("affnet")]),
        ("InpaintAff affinities from the trained net on a crop (the IGM split engine)",
         ["predict.py", "task=inpaintaff", f"ckpt={out}/train/checkpoints/last.ckpt", "task.crop=[64,64,96,96]",
          "task.stride=32", "task.torch_threads=1", "data.splits.predict=[{seq:'02',frames:[0]}]",
          data, run_dir("inpaintaff_net")]),
        ("InpaintAff affinities with the analytic inpainter on four whole frames",
         ["predict.py", "task=inpaintaff", "task.inpainter=gaussian", "task.torch_threads=1", frames, data,
          run_dir("inpaintaff")]),
        ("FGNET foreground for the same frames",
         ["predict.py", "task=foreground", f"ckpt={out}/fgnet/checkpoints/last.ckpt", "task.split=predict",
          frames, data, run_dir("foreground")]),
        ("AFFNET affinities for the same frames",
         ["predict.py", "task=affnet", f"ckpt={out}/affnet/checkpoints/last.ckpt", "task.split=predict",
          frames, data, run_dir("affnet_pred")]),
        ("INPAINTAFF + TRUEFG: mutex watershed, alpha chosen on val frames, test frames scored",
         ["predict.py", "task=segment_select", "task.affinities.source=dir", f"task.affinities.dir={aff_dir}",
          *splits, data, run_dir("seg_inpaintaff_truefg")]),
        ("INPAINTAFF + FGNET",
         ["predict.py", "task=segment_select", "task.affinities.source=dir", f"task.affinities.dir={aff_dir}",
          "task.foreground.source=dir", f"task.foreground.dir={fg_dir}", *splits, data,
          run_dir("seg_inpaintaff_fgnet")]),
        ("AFFNET + FGNET",
         ["predict.py", "task=segment_select", "task.affinities.source=dir",
          f"task.affinities.dir={out}/affnet_pred/affinities", "task.foreground.source=dir",
          f"task.foreground.dir={fg_dir}", *splits, data, run_dir("seg_affnet_fgnet")]),
        ("baseline: connected components on TRUEFG",
         ["predict.py", "task=segment", "task.method=cc", "task.split=test", f"data.splits.test={TEST}",
          data, run_dir("cc")]),
        ("report: the paper's Table 1 layout and detection-over-IoU plot",
         ["predict.py", "task=report", f"task.runs=[{out}]", run_dir("report")]),
    ]
    for i, (title, cmd) in enumerate(steps, start=1):
        _run(f"{i}/{len(steps)} {title}", cmd)
    print(f"\nDemo finished; everything is under {out}/ (table: {out}/report/table1.md)")


if __name__ == "__main__":
    main()
