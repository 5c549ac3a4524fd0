"""Inference speed of the inpainting net: precision, memory format, torch.compile, threads.

    .venv/bin/python benchmarks/inpainter_inference.py [--ckpt checkpoints/hela_inpaint_cpu.ckpt] [--device cpu]

Times one forward pass over batches of 64² images with random known-masks, as the split engine
sends them, for each variant side by side in one run, and prints milliseconds per image, the
speed-up against plain float32 and the largest difference of the prediction from float32.
``torch.compile`` is timed twice: on a fixed batch size, and on the varying batch sizes that the
engine sends (dynamic shapes), its compile time reported apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402


def timed(fn, reps: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    net = load_net_inpainter(args.ckpt, dev).net.net.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 64, 64, generator=g).to(dev)
    m = (torch.rand(args.batch, 1, 64, 64, generator=g) > 0.4).float().to(dev)
    amp_dtype = torch.bfloat16

    def amp(fn):
        def run():
            with torch.autocast(dev.type, dtype=amp_dtype):
                return fn()
        return run

    cl = torch.channels_last
    variants = {
        "float32": lambda: net(x, m),
        "float32, channels-last": lambda: net(x.contiguous(memory_format=cl), m.contiguous(memory_format=cl)),
        "bf16 autocast": amp(lambda: net(x, m)),
    }
    for threads in args.threads if dev.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        print(f"\n{args.batch} images of 64² per pass, {threads} thread(s), {dev}:")
        base, ref = None, None
        for name, fn in variants.items():
            sec, out = timed(fn, args.reps)
            base, ref = (sec, out) if base is None else (base, ref)
            print(f"  {name:34s} {sec / args.batch * 1e3:7.2f} ms/image  {base / sec:5.2f}x  "
                  f"max |diff| {float((out.float() - ref).abs().max()):.2e}", flush=True)
        if args.no_compile:
            continue
        for dynamic in (False, True):
            torch._dynamo.reset()
            t0 = time.perf_counter()
            cnet = torch.compile(net, dynamic=dynamic)
            sizes = [args.batch] if not dynamic else [args.batch, 2 * args.batch // 3, args.batch // 3 + 1]
            with torch.inference_mode():
                for b in sizes:
                    cnet(x[:b], m[:b])
            compile_s = time.perf_counter() - t0
            sec, out = timed(lambda cnet=cnet: cnet(x, m), args.reps)
            kind = "dynamic shapes" if dynamic else "fixed batch"
            print(f"  {'torch.compile, ' + kind:34s} {sec / args.batch * 1e3:7.2f} ms/image  {base / sec:5.2f}x  "
                  f"max |diff| {float((out.float() - ref).abs().max()):.2e}  (compiling: {compile_s:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
