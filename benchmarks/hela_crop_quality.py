"""SEG on real HeLa: InpaintAff (trained net, analytic inpainter) against connected components and
AFFNET, all on the same crop; α chosen on a crop of frame 052 (val), scored on frame 077 (test).

Runs the project's own command lines (as the demo does) and prints the report table. On 2 CPU
cores it takes about 10-20 minutes, most of it the engine with the net.

    .venv/bin/python benchmarks/hela_crop_quality.py [--out runs/hela_crop_quality]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from inpaintaff.demo import _run
from inpaintaff.utils.resolvers import PROJECT_DIR

CROP = "[432,96,224,224]"
VAL = "data.splits.val=[{seq:'01',frames:[52]}]"
TEST = "data.splits.test=[{seq:'01',frames:[77]}]"
PREDICT = "data.splits.predict=[{seq:'01',frames:[52,77]}]"
CKPT = PROJECT_DIR / "checkpoints"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/hela_crop_quality")
    parser.add_argument("--stride", type=int, default=16)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    data = ["data=shared_hela", VAL, TEST]
    t0 = time.perf_counter()
    engine = ["predict.py", "task=inpaintaff", f"task.crop={CROP}", f"task.stride={args.stride}",
              "task.torch_threads=2", PREDICT, *data]
    _run("InpaintAff affinities, trained CPU net", [*engine, f"ckpt={CKPT / 'hela_inpaint_cpu.ckpt'}",
                                                    "task.inpainter=net", f"hydra.run.dir={out}/aff_net"])
    _run("InpaintAff affinities, analytic inpainter", [*engine, "task.inpainter=gaussian",
                                                       f"hydra.run.dir={out}/aff_gauss"])
    _run("FGNET foreground", ["predict.py", "task=foreground", f"ckpt={CKPT / 'hela_fgnet_cpu.ckpt'}",
                              "task.split=predict", PREDICT, *data, f"hydra.run.dir={out}/fg"])
    _run("AFFNET affinities", ["predict.py", "task=affnet", f"ckpt={CKPT / 'hela_affnet_cpu.ckpt'}",
                               "task.split=predict", PREDICT, *data, f"hydra.run.dir={out}/aff_affnet"])
    select = ["predict.py", "task=segment_select", "task.affinities.source=dir", f"task.crop={CROP}",
              "task.metrics.sparse_gt=true", *data]
    fg = ["task.foreground.source=dir", f"task.foreground.dir={out}/fg/foreground"]
    runs = {
        "net_truefg": [f"task.affinities.dir={out}/aff_net/affinities"],
        "gauss_truefg": [f"task.affinities.dir={out}/aff_gauss/affinities",
                         "task.label='INPAINTAFF (analytic) + TRUEFG'"],
        "net_fgnet": [f"task.affinities.dir={out}/aff_net/affinities", *fg],
        "affnet_fgnet": [f"task.affinities.dir={out}/aff_affnet/affinities", *fg],
        "affnet_truefg": [f"task.affinities.dir={out}/aff_affnet/affinities", "task.label='AFFNET + TRUEFG'"],
    }
    for name, extra in runs.items():
        _run(f"segment: {name}", [*select, *extra, f"hydra.run.dir={out}/seg_{name}"])
    _run("baseline: CC on TRUEFG", ["predict.py", "task=segment", "task.method=cc", "task.split=test",
                                    f"task.crop={CROP}", "task.metrics.sparse_gt=true", *data,
                                    f"hydra.run.dir={out}/seg_cc"])
    _run("report", ["predict.py", "task=report", f"task.runs=[{out}]", f"hydra.run.dir={out}/report"])
    print(f"\nall done in {time.perf_counter() - t0:.0f} s; table: {out}/report/table1.md")


if __name__ == "__main__":
    main()
