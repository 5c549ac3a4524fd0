"""The quick-start main job (`make demo`): the whole pipeline on the embedded synthetic data.

Each step is one of the project's own command lines, run as a subprocess so that what the demo
does is exactly what a user types. Outputs go under ``runs/demo``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from inpaintaff.utils.resolvers import PROJECT_DIR


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
    out = Path(args.out)
    common = [f"hydra.run.dir={out}/{{step}}", f"paths.data_dir={out}/data"]

    def with_dir(step: str) -> list[str]:
        return [c.replace("{step}", step) for c in common]

    _run("train the inpainting net (CPU preset) on synthetic nuclei",
         ["train.py", "model=inpaint_cpu", f"trainer.max_steps={args.train_steps}", "trainer.max_epochs=-1",
          "trainer.accelerator=cpu", *with_dir("train")])
    print(f"\nDemo finished; everything is under {out}/")


if __name__ == "__main__":
    main()
