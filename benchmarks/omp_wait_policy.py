"""How torch's idle OpenMP threads wait, against the split engine's speed, on an idle and on a busy CPU.

    .venv/bin/python benchmarks/omp_wait_policy.py [--inpainters gaussian net] [--reps 2]

The entry points (predict.py, train.py, ``inpaintaff``) set ``OMP_WAIT_POLICY=PASSIVE`` unless the
user chose a policy (``inpaintaff/utils/threads.py``): spinning threads stalled the folder command
10× on cores shared with other work. The engine makes many small tensor operations, each of which
wakes the sleeping threads, so the policy decides its speed too. For each inpainter this times
``SplitEngine.run`` on the same seeded sample of frame 052's foreground patches (64 px, stride
16; ``full_frame.sample_patches``) in fresh processes, one per setting: the policy PASSIVE (the
default), ACTIVE or left to the OpenMP runtime, with 2 torch threads or 1, first on the idle
machine, then with one spinning process per core beside it (``--busy`` processes). Prints
seconds (the fastest of ``--reps``) and
each setting's ratio to PASSIVE with 2 threads (the entry points' policy at torch's thread count
on our 2 cores; ``task.torch_threads=auto`` takes 1 thread for the analytic inpainter); writes
``<out>/omp_wait_policy.json`` and ``<out>/omp_wait_policy.md``. The leaves are
compared across settings (they must not change).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {  # name: (OMP_WAIT_POLICY or None for the runtime's own, torch threads)
    "PASSIVE, 2 threads": ("PASSIVE", 2),
    "ACTIVE, 2 threads": ("ACTIVE", 2),
    "runtime's own, 2 threads": (None, 2),
    "PASSIVE, 1 thread": ("PASSIVE", 1),
}
PATCHES = {"gaussian": 48, "net": 8}


def child(inpainter: str, n_patches: int, reps: int) -> None:
    """In a fresh process (the policy is read when torch loads): time the engine, print JSON."""
    import hashlib
    from argparse import Namespace

    import torch
    from full_frame import sample_patches  # benchmarks/ is the script's folder, first on sys.path

    from inpaintaff.igm.inpainters import GaussianInpainter
    from inpaintaff.igm.split import SplitEngine
    from inpaintaff.modules.net_inpainter import load_net_inpainter

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    (patches, seeds), *_ = sample_patches(Namespace(frame=52, stride=16, old_sample=n_patches))
    if inpainter == "net":
        model = load_net_inpainter(ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt", "cpu")
    else:
        model = GaussianInpainter(4.0)
    engine = SplitEngine(model)
    engine.run(patches[:2], seeds[:2])  # warm-up: caches and allocations
    seconds, leaves = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        leaves = engine.run(patches, seeds).leaf_ids
        seconds.append(time.perf_counter() - t0)
    digest = hashlib.sha1(leaves.numpy().tobytes()).hexdigest()
    print(json.dumps({"seconds": seconds, "leaves_sha1": digest}))


def spinners(n: int) -> list[subprocess.Popen]:
    """``n`` processes that keep one core each busy (other work on a shared machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def measure(inpainter: str, policy: str | None, threads: int, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    env["BENCH_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--child", inpainter, "--reps", str(args.reps)],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    if out.returncode:
        sys.exit(f"{inpainter}, {policy}, {threads} threads failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inpainters", nargs="+", choices=list(PATCHES), default=list(PATCHES))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--busy", type=int, default=os.cpu_count(), help="spinning processes for the busy runs")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per setting")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_omp_wait_policy")
    ap.add_argument("--child", choices=list(PATCHES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, PATCHES[args.child], args.reps)
        return
    from inpaintaff.utils.resolvers import shared_data_dir

    if not (shared_data_dir() / "Fluo-N2DL-HeLa").is_dir():
        sys.exit(f"shared HeLa data not found at {shared_data_dir()}")
    print(f"{os.cpu_count()} cores; busy runs beside {args.busy} spinning processes; "
          f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    report: dict = {"cpu_count": os.cpu_count(), "busy_processes": args.busy, "rows": []}
    for inpainter in args.inpainters:
        for load in ("idle", "busy"):
            spin = spinners(args.busy) if load == "busy" else []
            try:
                time.sleep(1.0 if spin else 0.0)
                for name, (policy, threads) in SETTINGS.items():
                    r = measure(inpainter, policy, threads, args)
                    row = {"inpainter": inpainter, "load": load, "setting": name, "seconds": min(r["seconds"]),
                           "all_seconds": r["seconds"], "leaves_sha1": r["leaves_sha1"]}
                    report["rows"].append(row)
                    print(f"  {inpainter:8s} {load:4s} {name:30s} {row['seconds']:6.2f} s", flush=True)
            finally:
                for p in spin:
                    p.kill()
    default = next(iter(SETTINGS))
    lines = ["| inpainter (patches) | load | " + " | ".join(SETTINGS) + " |", "|---|---|" + "---|" * len(SETTINGS)]
    for inpainter in args.inpainters:
        for load in ("idle", "busy"):
            rows = {r["setting"]: r for r in report["rows"] if r["inpainter"] == inpainter and r["load"] == load}
            base = rows[default]["seconds"]
            cells = [f"{rows[n]['seconds']:.2f} s ({base / rows[n]['seconds']:.2f}×)" for n in SETTINGS]
            lines.append(f"| {inpainter} ({PATCHES[inpainter]}) | {load} | " + " | ".join(cells) + " |")
    same = {r["inpainter"]: len({x["leaves_sha1"] for x in report["rows"] if x["inpainter"] == r["inpainter"]}) == 1
            for r in report["rows"]}
    table = "\n".join(lines)
    print("\nseconds for the sample (the fastest of the reps), and PASSIVE with 2 threads' time over each "
          f"setting's (> 1: faster):\n{table}\nleaves identical across settings: {same}")
    report["table"], report["leaves_identical"] = table, same
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "omp_wait_policy.json").write_text(json.dumps(report, indent=2))
    (args.out / "omp_wait_policy.md").write_text(
        f"# The engine's speed against how torch's threads wait\n\n`python benchmarks/omp_wait_policy.py` on "
        f"{os.cpu_count()} cores; busy: {args.busy} spinning processes beside it. Seconds for the sample (the "
        f"fastest of {args.reps}), and PASSIVE with 2 threads' time over each setting's (> 1: faster):\n\n{table}\n\n"
        f"Leaves identical across settings: {same}.\n")
    print(f"figures in {args.out / 'omp_wait_policy.json'}")


if __name__ == "__main__":
    main()
