"""The folder command as a user runs it: ``python -m inpaintaff.cli segment DIR --out OUT`` in a
subprocess, timed from its start and, "once started", by the task's own ``wall_seconds`` (the
predict loop; from ``OUT/segment_folder_result.json``). Peak memory: the process tree polled from
/proc (the sum of RSS and of PSS over the command and its children; PSS splits shared pages, so
two spawned processes are not double-counted) and the largest single process's ``ru_maxrss``.

Three parts, measured side by side in one run (each input folder holds symlinks in a tmp folder;
the shared data are read-only and never copied):

- ``dsb``: the DSB 2018 folder (541 images, 256² up to 1040×1388): images per second, peak memory;
- ``hela``: whole 700×1100 HeLa frames (Fluo-N2DL-HeLa/01/tNNN.tif) with 1 and 2 processes
  (``--devices 2``: ddp_spawn on CPU): seconds per frame, and the per-stage breakdown from
  ``images.csv`` (seconds_scale / _foreground / _affinities / _mws; "rest": reading, normalising,
  measuring, writing the mask, overlay and record). Target: <= 1.5 s per frame on 2 cores;
- ``flat``: peak memory after 10 vs after 1,000 images (1,000 distinct names linking to the small
  256×256 DSB images, repeated);
- ``stack``: the 9 labeled HeLa frames of sequence 01 as one time-lapse file (ImageJ axes TYX, with
  their GT as a stack of label planes; written into the tmp folder) against the same frames as single
  files with the CTC GT folder: seconds per frame, peak memory, SEG, and whether every plane's mask
  equals its single file's.

    .venv/bin/python benchmarks/segment_folder.py [--parts dsb,hela,flat] [--limit 60]
        [--hela-frames 8] [--flat 10,1000] [--diameter D] [--out runs/bench_segment_folder]

Writes ``<out>/figures.json`` and ``<out>/figures.csv`` (one row per command) and every command's
log and outputs under ``<out>/runs``. The nucleus size is estimated per image (the default a user
gets) unless ``--diameter`` is given. Figures depend on the machine's load: the load average
before and after each command is recorded beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from inpaintaff.utils.resolvers import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
DSB = SHARED / "dsb2018" / "images"
HELA = SHARED / "Fluo-N2DL-HeLa" / "01"
STAGES = ("scale", "foreground", "affinities", "mws")


# --------------------------------------------------------------------------------------- memory
def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _kib(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Polls a process tree: peak sum of RSS and of PSS (KiB), peak process count, a trace."""

    def __init__(self, pid: int, every: float = 0.25, count_dir: Path | None = None):
        super().__init__(daemon=True)
        self.pid, self.every, self.count_dir = pid, every, count_dir
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.trace: list[tuple[float, int, int, int]] = []  # (s, rss KiB, pss KiB, masks written)
        self._halt = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        i = 0
        while not self._halt.is_set():
            pids = _tree(self.pid)
            rss = sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
            pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            if i % 4 == 0:  # a trace point every ~1 s, with the number of masks written so far
                n = sum(1 for _ in os.scandir(self.count_dir)) if self.count_dir and self.count_dir.is_dir() else 0
                self.trace.append((round(time.perf_counter() - self._t0, 2), rss, pss, n))
            i += 1
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ------------------------------------------------------------------------------------- commands
def run_command(images: Path, out: Path, extra: list[str], log_path: Path, project: Path = ROOT) -> dict:
    """One ``inpaintaff segment`` run in a subprocess (from the log's folder, ``project``'s checkout
    first on PYTHONPATH); its figures."""
    import subprocess

    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "inpaintaff.cli", "segment", str(images), "--out", str(out),
           "trainer.enable_progress_bar=false", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), *filter(None, [os.environ.get("PYTHONPATH")])])}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=log_path.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
        mem = TreeMemory(proc.pid, count_dir=out / "masks")
        mem.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    mem.stop()
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}), see {log_path}: {' '.join(cmd)}")
    result = json.loads((out / "segment_folder_result.json").read_text())
    with open(out / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    n = int(result["n_segmented_now"])
    stage = {k: sum(float(r[f"seconds_{k}"] or 0) for r in rows) / max(len(rows), 1) for k in STAGES}
    per_image = sum(float(r["seconds"]) for r in rows) / max(len(rows), 1)
    started = float(result["wall_seconds"])
    return {
        "n_images": n, "wall_s": wall, "started_s": started, "startup_s": wall - started,
        "images_per_s": n / wall, "images_per_s_started": n / started if started else None,
        "s_per_image": wall / n, "s_per_image_started": result["seconds_per_image"],
        "step_s": per_image, **{f"step_{k}_s": v for k, v in stage.items()},
        "step_rest_s": per_image - sum(stage.values()),
        "peak_rss_tree_mib": mem.peak_rss / 1024, "peak_pss_tree_mib": mem.peak_pss / 1024,
        "max_rss_one_process_mib": usage.ru_maxrss / 1024, "processes": mem.peak_procs,
        "n_objects": result["n_objects"], "resized_images": result["resized_images"], "seg": result["seg"],
        "pixels_mpx": sum(int(r["height"]) * int(r["width"]) for r in rows) / 1e6,
        "load_before": load0, "load_after": os.getloadavg()[0], "log": str(log_path), "trace": mem.trace,
    }


def same_masks(mine: Path, earlier: Path) -> bool | None:
    """Whether two mask folders hold the same names and identical label images (None: no earlier)."""
    import numpy as np
    import tifffile

    if not earlier.is_dir():
        return None
    a, b = sorted(p.name for p in mine.glob("*.tif")), sorted(p.name for p in earlier.glob("*.tif"))
    return a == b and all(np.array_equal(tifffile.imread(mine / n), tifffile.imread(earlier / n)) for n in a)


def link_folder(folder: Path, sources: list[Path], names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True)
    for i, src in enumerate(sources):
        name = names[i] if names else src.name
        os.symlink(src, folder / name)
    return folder


def spread(items: list, n: int | None) -> list:
    """``n`` items spread evenly over ``items`` (all of them when ``n`` is None)."""
    if n is None or n >= len(items):
        return items
    return [items[int(i * len(items) / n)] for i in range(n)]


def small_dsb(n_distinct: int) -> list[Path]:
    import tifffile

    small = []
    for p in sorted(DSB.glob("*.tif")):
        with tifffile.TiffFile(p) as tf:
            if tf.pages[0].shape[:2] == (256, 256):
                small.append(p)
        if len(small) >= n_distinct:
            break
    return small


HELA_GT = SHARED / "Fluo-N2DL-HeLa" / "01_GT" / "SEG"


def stack_folders(tmp: Path) -> tuple[Path, Path, Path]:
    """(a folder of the labeled HeLa frames as single files, a folder holding them as one TYX movie,
    the GT folder); the movie's GT stack is written beside its folder as ``movie_masks/movie.tif``."""
    import numpy as np
    import tifffile

    gts = sorted(HELA_GT.glob("man_seg*.tif"))
    frames = [HELA / f"t{g.stem[len('man_seg'):]}.tif" for g in gts]
    singles = link_folder(tmp / "stack_singles", frames)
    movie_dir, masks_dir = tmp / "stack_movie", tmp / "movie_masks"
    movie_dir.mkdir()
    masks_dir.mkdir()
    tifffile.imwrite(movie_dir / "movie.tif", np.stack([tifffile.imread(f) for f in frames]), imagej=True,
                     metadata={"axes": "TYX"})
    tifffile.imwrite(masks_dir / "movie.tif", np.stack([tifffile.imread(g) for g in gts]).astype(np.uint16))
    return singles, movie_dir, HELA_GT


def stack_equals_singles(stack_mask: Path, singles_masks: Path) -> bool:
    import numpy as np
    import tifffile

    stack = tifffile.imread(stack_mask)
    singles = sorted(singles_masks.glob("t*.tif"))
    return len(stack) == len(singles) and all(np.array_equal(p, tifffile.imread(f)) for p, f in zip(stack, singles))


# ----------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="dsb,hela,flat", help="comma-separated: dsb, hela, flat, stack")
    ap.add_argument("--limit", type=int, help="DSB: this many images spread over the folder (default: all 541)")
    ap.add_argument("--hela-frames", type=int, default=8)
    ap.add_argument("--devices", default="1,2", help="HeLa: process counts to compare")
    ap.add_argument("--flat", default="10,1000", help="flat memory: the two image counts")
    ap.add_argument("--flat-distinct", type=int, default=50, help="distinct small DSB images behind the links")
    ap.add_argument("--diameter", type=float, help="nucleus diameter for every command (default: estimated)")
    ap.add_argument("--extra", nargs="*", default=[], help="further arguments for every command (Hydra overrides)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_segment_folder")
    ap.add_argument("--project", type=Path, default=ROOT,
                    help="checkout whose code the commands run (e.g. another branch's worktree, for a before/after)")
    ap.add_argument("--same-masks-as", type=Path,
                    help="an earlier --out: check that runs of the same name wrote identical masks")
    a = ap.parse_args()
    a.out = a.out.resolve()  # the commands run from their log's folder

    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    extra = [*(["--diameter", str(a.diameter)] if a.diameter else []), *a.extra]
    a.out.mkdir(parents=True, exist_ok=True)
    runs_dir = a.out / "runs"
    runs_dir.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_segment_folder_"))
    figures: dict[str, dict] = {}
    meta = {"cpus": os.cpu_count(), "python": sys.executable, "diameter": a.diameter or "estimated",
            "extra": a.extra, "project": str(a.project.resolve()), "argv": sys.argv[1:],
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def record(key: str, images: Path, more: list[str] = ()) -> dict:
        print(f"[{time.strftime('%H:%M:%S')}] {key}: {sum(1 for _ in images.iterdir())} image(s) ...", flush=True)
        fig = run_command(images, runs_dir / key, [*extra, *more], runs_dir / f"{key}.log", a.project.resolve())
        if a.same_masks_as is not None:
            fig["masks_identical_to_earlier"] = same_masks(runs_dir / key / "masks",
                                                           a.same_masks_as / "runs" / key / "masks")
            print(f"    masks identical to {a.same_masks_as}: {fig['masks_identical_to_earlier']}", flush=True)
        figures[key] = fig
        print(f"    {fig['n_images']} images, {fig['wall_s']:.1f} s end to end "
              f"({fig['started_s']:.1f} s once started), "
              f"{fig['images_per_s']:.2f} img/s, {fig['s_per_image_started']:.3f} s/img once started, "
              f"peak RSS {fig['peak_rss_tree_mib']:.0f} MiB (PSS {fig['peak_pss_tree_mib']:.0f}), "
              f"load {fig['load_before']:.1f}->{fig['load_after']:.1f}", flush=True)
        (a.out / "figures.json").write_text(json.dumps({"meta": meta, "figures": figures}, indent=1))
        return fig

    try:
        if "hela" in parts:
            frames = spread(sorted(HELA.glob("t*.tif")), a.hela_frames)
            hela = link_folder(tmp / "hela", frames)
            for d in [int(x) for x in a.devices.split(",")]:
                record(f"hela_{len(frames)}f_{d}proc", hela, ["--devices", str(d)] if d > 1 else [])
        if "dsb" in parts:
            all_dsb = sorted(DSB.glob("*.tif"))
            dsb = DSB if a.limit is None else link_folder(tmp / "dsb", spread(all_dsb, a.limit))
            record(f"dsb_{a.limit or len(all_dsb)}", dsb)
        if "flat" in parts:
            small = small_dsb(a.flat_distinct)
            for n in [int(x) for x in a.flat.split(",")]:
                srcs = [small[i % len(small)] for i in range(n)]
                names = [f"img{i:05d}_{s.name}" for i, s in enumerate(srcs)]
                record(f"flat_{n}", link_folder(tmp / f"flat_{n}", srcs, names))
        if "stack" in parts:
            singles, movie, gt = stack_folders(tmp)
            record("stack_9f_singles", singles, ["--masks", str(gt)])
            record("stack_9f_movie", movie, ["--masks", str(movie.parent / "movie_masks")])
            figures["stack_9f_movie"]["masks_equal_singles"] = stack_equals_singles(
                runs_dir / "stack_9f_movie" / "masks" / "movie.tif", runs_dir / "stack_9f_singles" / "masks")
            print(f"    every plane's mask equals its single file's: "
                  f"{figures['stack_9f_movie']['masks_equal_singles']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report(figures, a.out, meta)


def report(figures: dict[str, dict], out: Path, meta: dict) -> None:
    cols = ["n_images", "wall_s", "started_s", "startup_s", "images_per_s", "images_per_s_started", "s_per_image",
            "s_per_image_started", "step_s", *[f"step_{k}_s" for k in STAGES], "step_rest_s", "peak_rss_tree_mib",
            "peak_pss_tree_mib", "max_rss_one_process_mib", "processes", "pixels_mpx", "resized_images",
            "n_objects", "seg", "load_before", "load_after"]
    with open(out / "figures.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", *cols])
        for key, fig in figures.items():
            w.writerow([key, *[fig.get(c) for c in cols]])
    ratios: dict[str, float] = {}
    hela = {k: v for k, v in figures.items() if k.startswith("hela_")}
    one = next((v for k, v in hela.items() if k.endswith("_1proc")), None)
    for k, v in hela.items():
        if one is not None and v is not one:
            ratios[f"{k} speed-up once started (vs 1 process)"] = one["started_s"] / v["started_s"]
            ratios[f"{k} speed-up end to end (vs 1 process)"] = one["wall_s"] / v["wall_s"]
            ratios[f"{k} peak PSS / 1 process"] = v["peak_pss_tree_mib"] / one["peak_pss_tree_mib"]
    flat = sorted((v["n_images"], v) for k, v in figures.items() if k.startswith("flat_"))
    if len(flat) >= 2:
        (n0, f0), (n1, f1) = flat[0], flat[-1]
        ratios[f"flat peak RSS {n1} / {n0} images"] = f1["peak_rss_tree_mib"] / f0["peak_rss_tree_mib"]
        ratios[f"flat peak PSS {n1} / {n0} images"] = f1["peak_pss_tree_mib"] / f0["peak_pss_tree_mib"]
        ratios[f"flat max RSS one process {n1} / {n0} images"] = (f1["max_rss_one_process_mib"]
                                                                  / f0["max_rss_one_process_mib"])
        # Within the long run: RSS once 10 masks were written vs at the end.
        tr = f1["trace"]
        early = [r for _, r, _, m in tr if m <= n0]
        if early:
            ratios[f"flat_{n1}: peak RSS over the run / peak RSS until {n0} masks (same run)"] = (
                max(r for _, r, _, _ in tr) / max(early))
    movie, singles = figures.get("stack_9f_movie"), figures.get("stack_9f_singles")
    if movie and singles:
        ratios["stack: movie / single files, seconds once started"] = movie["started_s"] / singles["started_s"]
        ratios["stack: movie / single files, peak RSS"] = movie["peak_rss_tree_mib"] / singles["peak_rss_tree_mib"]
        ratios["stack: SEG movie - single files"] = movie["seg"] - singles["seg"]
    (out / "figures.json").write_text(json.dumps({"meta": meta, "figures": figures, "ratios": ratios}, indent=1))

    print(f"\n{'run':<18}{'imgs':>5}{'wall s':>8}{'started s':>10}{'img/s':>7}{'s/img*':>8}"
          f"{'scale':>7}{'fg':>7}{'aff':>7}{'mws':>7}{'rest':>7}{'RSS MiB':>9}{'PSS MiB':>9}{'1proc MiB':>10}"
          f"{'load':>6}")
    for key, f in figures.items():
        print(f"{key:<18}{f['n_images']:>5}{f['wall_s']:>8.1f}{f['started_s']:>10.1f}{f['images_per_s']:>7.2f}"
              f"{f['s_per_image_started']:>8.3f}" + "".join(f"{f[f'step_{k}_s']:>7.3f}" for k in STAGES)
              + f"{f['step_rest_s']:>7.3f}{f['peak_rss_tree_mib']:>9.0f}{f['peak_pss_tree_mib']:>9.0f}"
              f"{f['max_rss_one_process_mib']:>10.0f}{f['load_before']:>6.1f}")
    print("s/img*: once started (the task's wall_seconds / images); stage columns: mean seconds per image "
          "from images.csv (rest: reading, normalising, measuring, writing)")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}")
    print(f"machine: {meta['cpus']} CPUs (shared with other work: see the load column); diameter: {meta['diameter']}")


if __name__ == "__main__":
    main()
