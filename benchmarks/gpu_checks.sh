#!/bin/bash
# The device checks of one GPU session, in one script (a few minutes on one H200):
#   1. the crowded 700x1100 mosaic and the sparse frame 052 on one GPU, exact float32 (the default)
#      and TF32 (task.engine.precision=tf32), whole process, with frame 052's SEG by α;
#   2. one crop's affinities on the GPU (exact float32 and TF32) against the CPU's: exact float32
#      should be identical;
#   3. FGNET trained on the GPU, its foreground IoU on frame 013 beside the shipped CPU-trained one's.
# Usage: bash benchmarks/gpu_checks.sh [OUT_DIR]   (PY=python by default; the shared data as the
# benchmarks find it: $INPAINTAFF_SHARED_DATA or ../shared/data). Figures of a run of its steps:
# docs/figures/full_frame_gpu.md. A dry run of steps 2-3 on a CPU (a few minutes):
#   ACC=cpu FRAMES=0 STEPS=20 bash benchmarks/gpu_checks.sh
set -u
PY=${PY:-python}; OUT=${1:-runs/gpu_checks}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
ACC=${ACC:-gpu}; FRAMES=${FRAMES:-1}; STEPS=${STEPS:-1500}
export PYTHONUNBUFFERED=1
GPU="trainer.accelerator=$ACC trainer.devices=1 task.batch_size=256 task.engine.max_regions=4096"
TRAINER=$([ "$ACC" = gpu ] && echo gpu || echo cpu)
[ "$FRAMES" = 1 ] && for prec in 32 tf32; do
  echo "== crowded mosaic and frame 052, one GPU, engine.precision=$prec"
  timeout 300 $PY benchmarks/full_frame.py --crowded --inpainters net --threads 8 --out "$OUT/crowded_$prec" \
    -- $GPU task.engine.precision=$prec 2>&1 | tee "$OUT/crowded_$prec.log"
  timeout 300 $PY benchmarks/full_frame.py --frame 52 --inpainters net --old-sample 0 --threads 8 --out "$OUT/t052_$prec" \
    -- $GPU task.engine.precision=$prec 2>&1 | tee "$OUT/t052_$prec.log"
done
echo "== one crop's affinities: GPU (precision 32, tf32) against the CPU"
for run in "gpu32 $ACC 32" "gputf32 $ACC tf32" "cpu cpu 32"; do
  set -- $run
  timeout 300 $PY predict.py task=inpaintaff ckpt=checkpoints/hela_inpaint_cpu.ckpt data=shared_hela "task.crop=[448,64,96,128]" \
    trainer.accelerator=$2 trainer.devices=1 task.engine.precision=$3 task.torch_threads=8 \
    task.out_dir="$OUT/aff_$1" hydra.run.dir="$OUT/run_$1" > "$OUT/aff_$1.log" 2>&1 || tail -20 "$OUT/aff_$1.log"
done
$PY - "$OUT" <<'PYEOF' | tee "$OUT/aff_compare.txt"
import sys
from pathlib import Path
import numpy as np
from inpaintaff.io.affinities import read_affinities
out = Path(sys.argv[1])
def rd(n):
    return read_affinities(next((out / f"aff_{n}").rglob("aff*.tif")))[:2]
c, vc = rd("cpu")
for n in ("gpu32", "gputf32"):
    a, va = rd(n); m = va & vc; d = np.abs(a - c)[m]
    print(f"{n} vs cpu: valid pairs {m.sum()}; identical {np.mean(d == 0):.4%}; > 0.05: {np.mean(d > 0.05):.4%}")
PYEOF
echo "== FGNET trained on the GPU, foreground IoU on frame 013 (unseen)"
timeout 300 $PY train.py experiment=hela_fgnet_cpu trainer=$TRAINER trainer.max_steps=$STEPS hydra.run.dir="$OUT/fgnet" \
  > "$OUT/fgnet_train.log" 2>&1 \
  || tail -30 "$OUT/fgnet_train.log"
for pair in "gpu_trained $(find "$OUT/fgnet" -name last.ckpt | head -1)" "shipped checkpoints/hela_fgnet_cpu.ckpt"; do
  set -- $pair; name=$1; ck=$2
  $PY predict.py task=foreground ckpt="$ck" data=shared_hela task.split=train trainer.accelerator=$ACC trainer.devices=1 \
    task.out_dir="$OUT/fg_$name" task.overwrite=true hydra.run.dir="$OUT/fgrun_$name" > "$OUT/fg_$name.log" 2>&1
  $PY - "$OUT/fg_$name" "$ck" <<'PYEOF' | tee -a "$OUT/fg_iou.txt"
import sys
from pathlib import Path
import tifffile
from inpaintaff.io.ctc import read_labels
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.utils.resolvers import shared_data_dir
p = tifffile.imread(next(Path(sys.argv[1]).rglob("*013.tif"))) >= 0.5
t = true_foreground(read_labels(shared_data_dir() / "Fluo-N2DL-HeLa/01_GT/SEG/man_seg013.tif")) > 0
print(f"{sys.argv[2]}: foreground IoU at 0.5 on frame 013 {(p & t).sum() / (p | t).sum():.4f}")
PYEOF
done
