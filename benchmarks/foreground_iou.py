"""Foreground IoU of FGNET on a whole labeled HeLa frame it did not train on.

FGNET is trained on one fully labeled shared frame cropped to at most 50 nuclei (the label
budget: ``experiment=hela_fgnet_cpu``), then scored on the other whole frame against TRUEFG:
train on 013, measure on 052, and the reverse, for each seed and variant. Variants are override
lists for ``train.py`` (``--variant name=override,override``); the built-in ones:

- ``scratch``: the paper's FGNET (random init, no augmentation, plain BCE);
- ``student``: started from the shipped DISTILL student (``model.init_from``);
- ``student_aug``: and flips, contrast, brightness and a brightness field (``data.augment``);
- ``student_aug_edge``: and boundary pixels weighted (``model.boundary_weight=4``);
- ``scratch_aug_edge``: augmentation and boundary weight without the student;
- ``student_aug_edge_refine``: ``student_aug_edge`` with a full-resolution block on the output
  (``model.refine=16``);
- ``student_aug_edge_decoder`` / ``_head``: ``student_aug_edge`` with the student's encoder (or every
  layer but the output) kept as it is (``model.train_layers``): the head variant shares all its
  features with the student, one net for both outputs.
- ``student_aug_edge_long``: ``student_aug_edge`` trained three times longer (4,500 steps).
- ``student_aug_edge_dice``: ``student_aug_edge`` with the soft Dice loss of the foreground added to
  BCE (``model.dice_weight=1``), which weighs a ring of missed pixels as the IoU does.
- ``student_aug_edge_whole``: ``student_aug_edge`` on the whole labeled frame, not cropped to the label
  budget (013: 59 nuclei, 052: 109, against 31 either way): what more labels of the same kind give.
- ``student_whole_fit``: the student on the whole labeled frame without augmentation or boundary weight,
  4,500 steps: fitted as closely as it will go to its own frame's outlines (compare the IoU on its
  training frame with the IoU on the other frame).
- ``student_aug_edge_pseudo``: self-training: the ``student_aug_edge`` FGNET of the same frame and seed
  predicts the unlabeled frames (sequence 01 without the validation, test and measured frames), and
  a new ``student_aug_edge`` FGNET trains on the labels plus these frames' confident pixels
  (``data.pseudo``: above 0.7 foreground, below 0.3 background, half the crops).

``--ensemble`` measures the kept runs' FGNETs of each variant and direction averaged (the mean of
their probabilities), beside the seeds' own mean, into ``ensemble.md``.

Per run: IoU at thresholds 0.3–0.6, with 8 flips/turns averaged at 0.5 (``tta``), at 0.5 without the
nuclei cut by the frame's border, which the GT leaves unlabeled (``interior``), at 0.5 on the whole
frame it trained on (how closely it fits its own labels), ``1 − IoU`` at 0.5 split by where the errors
lie (``inpaintaff.metrics.foreground``: outline one pixel off, objects the GT lacks and of them those
cut by the border, nuclei missed entirely, the rest), and the seconds of one whole-frame prediction
with and without flips. With ``--seg``, also Table 1's
FGNET rows with that FGNET (``experiment=hela_table1``: DISTILL + FGNET with the shipped student,
and CC on FGNET; α, fragment size and FGNET's threshold chosen on the validation frames 025, 044,
054, SEG on the test frames 014, 021, 039, 077). With ``--tuned`` as well, the rows of DISTILL-TUNED
(``experiment=hela_distill_tuned_cpu``: the student fine-tuned on the same labeled crop, with the same
seed) with that FGNET and with TRUEFG, so that both nets spend the same at most 50 labels. Writes
``results.json`` and ``table.md`` into --out and prints the table (mean ± std over seeds per variant and direction).

    PYTHONPATH=. .venv/bin/python benchmarks/foreground_iou.py [--variants scratch student ...] \
        [--seeds 1 2 3] [--seg [--tuned]] [--out runs/bench_foreground_iou] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from inpaintaff.metrics.foreground import PARTS as ERROR_PARTS
from inpaintaff.utils.resolvers import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
STUDENT = ROOT / "inpaintaff" / "checkpoints" / "hela_distill_cpu.ckpt"
AUG = ["data.augment.flips=true", "data.augment.contrast=0.3", "data.augment.brightness=0.1",
       "data.augment.field=0.3"]
# Each variant sets every knob it is about, so that it means the same whatever the preset's defaults.
PLAIN = ["model.init_from=null", "model.boundary_weight=0", "model.dice_weight=0", "model.refine=0",
         "model.train_layers=all",
         "data.augment.flips=false", "data.augment.contrast=0", "data.augment.brightness=0", "data.augment.field=0"]
VARIANTS = {
    "scratch": PLAIN,
    "student": [*PLAIN, f"model.init_from={STUDENT}"],
    "student_aug": [*PLAIN, f"model.init_from={STUDENT}", *AUG],
    "student_aug_edge": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4"],
    "scratch_aug_edge": [*PLAIN, *AUG, "model.boundary_weight=4"],
    "student_aug_edge_refine": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                                "model.refine=16"],
    "student_aug_edge_decoder": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                                 "model.train_layers=decoder"],
    "student_aug_edge_head": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                              "model.train_layers=head"],
    "student_aug_edge_long": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                              "trainer.max_steps=4500"],
    "student_aug_edge_dice": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                              "model.dice_weight=1"],
    "student_aug_edge_whole": [*PLAIN, f"model.init_from={STUDENT}", *AUG, "model.boundary_weight=4",
                               "data.max_instances=null"],
    "student_whole_fit": [*PLAIN, f"model.init_from={STUDENT}", "data.max_instances=null", "trainer.max_steps=4500"],
}
# Self-training variants: name -> the variant whose FGNET (same frame, seed) pseudo-labels the raw frames.
PSEUDO = {"student_aug_edge_pseudo": "student_aug_edge"}
VARIANTS["student_aug_edge_pseudo"] = VARIANTS["student_aug_edge"]
HELD_OUT = [14, 21, 25, 39, 44, 54, 77]  # shared_hela's validation and test frames: never pseudo-labeled
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
DIRECTIONS = ((13, 52), (52, 13))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def without_border_objects(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its connected components that touch the frame's border. The HeLa GT leaves
    nuclei cut by the border unlabeled (one labeled nucleus of 013 and of 052 touches it), so an
    FGNET that finds them is counted wrong there; ``iou_interior`` compares both masks without them."""
    from scipy import ndimage as ndi

    comp, _ = ndi.label(mask)
    edge = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    return mask & ~np.isin(comp, edge[edge > 0])


def train(variant: list[str], seed: int, frame: int, out: Path, data_root: Path,
          experiment: str = "hela_fgnet_cpu") -> str:
    """Train (or read back) FGNET (or ``experiment``'s net) on ``frame`` with the variant's overrides;
    its checkpoint."""
    from omegaconf import open_dict

    from inpaintaff.tasks.compose import compose
    from inpaintaff.tasks.training import data_container, fit_or_resume

    overrides = [f"experiment={experiment}", f"seed={seed}", f"data.root={data_root}",
                 f"data.splits.train=[{{seq: '01', frames: [{frame}]}}]", "logger=csv", *variant]
    tcfg = compose("train", overrides)
    with open_dict(tcfg):
        tcfg.paths.output_dir = str(out)
    return fit_or_resume(tcfg, out, {"overrides": overrides, "data": data_container(tcfg)})["checkpoint"]


def pseudo_overrides(teacher_ckpt: str, measured: int, out: Path, data_root: Path) -> list[str]:
    """The teacher FGNET's probabilities of the raw frames (without the held-out and the measured frame)
    in ``out`` (a ``task=foreground`` process; kept), and the training overrides that read them."""
    raw = f"data.splits.raw=[{{seq: '01', frames: null, exclude: {[*HELD_OUT, measured]}}}]"
    if not (out / "done").is_file():
        args = [sys.executable, str(ROOT / "predict.py"), "task=foreground", "data=shared_hela",
                f"data.root={data_root}", f"ckpt={teacher_ckpt}", "task.split=raw", raw, f"task.out_dir={out}",
                f"hydra.run.dir={out}/run"]
        subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (out / "done").write_text(teacher_ckpt)
    return [f"data.pseudo.dir={out}", raw]


def frame_and_truth(frame: int, data_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The normalised whole frame and its TRUEFG."""
    from inpaintaff.data.normalize import percentile_normalize
    from inpaintaff.io import ctc
    from inpaintaff.segment.foreground import true_foreground

    dataset = "Fluo-N2DL-HeLa"
    image = percentile_normalize(ctc.read_image(ctc.raw_path(data_root, dataset, "01", frame)))
    return image, true_foreground(ctc.read_labels(ctc.gt_seg_path(data_root, dataset, "01", frame)))


def load_fgnet(ckpt: str) -> Any:
    """The FGNET module of the checkpoint ``ckpt``."""
    from inpaintaff.modules.fgnet import FGNetModule
    from inpaintaff.tasks.checkpoints import load_module

    return load_module(FGNetModule, ckpt)


def fgnet_probability(module: Any, image: np.ndarray, flips: bool = False) -> np.ndarray:
    """An FGNET's foreground probability of a whole frame (8 flips/turns averaged if ``flips``)."""
    from inpaintaff.utils.tiling import predict_at_least, with_flips

    predict = with_flips(module.predict_proba) if flips else module.predict_proba
    return predict_at_least(predict, image, 256, 32)[0]


def ious(prob: np.ndarray, truth: np.ndarray) -> dict:
    """IoU against TRUEFG at each of ``THRESHOLDS``, and at 0.5 without the objects cut by the border."""
    out = {f"iou_{t}": iou(prob > t, truth) for t in THRESHOLDS}
    out["iou_interior"] = iou(without_border_objects(prob > 0.5), without_border_objects(truth))
    return out


def measure(ckpt: str, frame: int, data_root: Path, train_frame: int | None = None) -> dict:
    """IoU of the FGNET at ``ckpt`` on the whole frame ``frame`` against TRUEFG, where its errors lie
    (``foreground_errors`` at 0.5), and with ``train_frame`` its IoU at 0.5 on the whole frame it
    trained on (how closely it fits its own labels' outlines)."""
    from inpaintaff.metrics.foreground import foreground_errors

    image, truth = frame_and_truth(frame, data_root)
    module = load_fgnet(ckpt)
    t0 = time.perf_counter()
    prob = fgnet_probability(module, image)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    prob_tta = fgnet_probability(module, image, flips=True)
    seconds_tta = time.perf_counter() - t0
    interior = without_border_objects(prob > 0.5)
    out = {**ious(prob, truth), "iou_tta": iou(prob_tta > 0.5, truth),
           "seconds": seconds, "seconds_tta": seconds_tta,
           "fg_pixels": int(truth.sum()), "predicted": int((prob > 0.5).sum()),
           "missed": int((truth & ~(prob > 0.5)).sum()), "false": int((~truth & (prob > 0.5)).sum()),
           "false_border": int((~truth & (prob > 0.5) & ~interior).sum()),
           "errors": foreground_errors(prob > 0.5, truth)}
    if train_frame is not None:
        train_image, train_truth = frame_and_truth(train_frame, data_root)
        out["iou_train"] = iou(fgnet_probability(module, train_image) > 0.5, train_truth)
    return out


def ensembles(results: list[dict], data_root: Path) -> str:
    """Per variant and direction with 2 or more seeds kept: the IoUs of the seeds' FGNETs averaged
    (their probabilities' mean), beside the seeds' mean IoU."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["variant"], r["direction"]), []).append(r)
    heads = [f"IoU {t}" for t in THRESHOLDS] + ["interior"]
    cols = " | ".join(f"{h}: seeds / mean of FGNETs" for h in heads)
    lines = [f"| variant | train → measure | FGNETs | {cols} |", "|---" * (3 + len(heads)) + "|"]
    if not any(len(rs) > 1 for rs in groups.values()):
        raise SystemExit("--ensemble: no variant has two or more seeds kept in --out; run the variants first")
    for (variant, direction), rs in groups.items():
        if len(rs) < 2:
            continue
        image, truth = frame_and_truth(int(direction.split("→")[1]), data_root)
        mean = ious(np.mean([fgnet_probability(load_fgnet(r["checkpoint"]), image) for r in rs], axis=0), truth)
        cells = [f"{np.mean([r[k] for r in rs]):.3f} / {mean[k]:.3f}"
                 for k in [*(f"iou_{t}" for t in THRESHOLDS), "iou_interior"]]
        lines.append(f"| {variant} | {direction} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SEG_THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5]  # FGNET's threshold, chosen with α on the validation frames
SEG_ROWS = ['{label: "DISTILL + FGNET", affinities: distill, foreground: fgnet}',
            '{label: "CC on FGNET", method: cc, foreground: fgnet}']
TUNED_ROWS = ['{label: "DISTILL-TUNED + FGNET", affinities: distill_tuned, foreground: fgnet}',
              '{label: "DISTILL-TUNED + TRUEFG", affinities: distill_tuned, foreground: truefg}']


def table1_rows(ckpt: str, out: Path, data_root: Path, distill_dir: Path | None,
                tuned_ckpt: str | None = None) -> dict:
    """Table 1's FGNET rows with this FGNET (a ``predict.py`` process; its folder resumes), and with
    ``tuned_ckpt`` DISTILL-TUNED's rows with it and with TRUEFG."""
    rows = SEG_ROWS + (TUNED_ROWS if tuned_ckpt else [])
    args = [sys.executable, str(ROOT / "predict.py"), "experiment=hela_table1", f"data.root={data_root}",
            f"task.fgnet_ckpt={ckpt}", f"task.rows=[{', '.join(rows)}]", "task.figure=null", "task.overlays=false",
            "task.eval_splits=[test]", f"task.fg_thresholds={SEG_THRESHOLDS}", f"hydra.run.dir={out}"]
    if distill_dir is not None:
        args.append(f"+task.affinity_dirs.distill={distill_dir}")
    if tuned_ckpt:
        args.append(f"task.affinity_nets.distill_tuned={tuned_ckpt}")
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads((out / "table1.json").read_text())
    by_label = {r["label"]: r for r in report["rows"]}
    d, cc = by_label["DISTILL + FGNET"], by_label["CC on FGNET"]
    result = {"seg_val": d["seg_val"], "seg_test": d["splits"]["test"]["seg"], "alpha": d["alpha"],
              "min_size": d["min_size"], "threshold": d.get("threshold"), "cc_seg_val": cc["seg_val"],
              "cc_seg_test": cc["splits"]["test"]["seg"], "cc_threshold": cc.get("threshold"),
              "fg_thresholds": SEG_THRESHOLDS}
    if tuned_ckpt:
        a, t = by_label["DISTILL-TUNED + FGNET"], by_label["DISTILL-TUNED + TRUEFG"]
        result.update({"tuned_checkpoint": tuned_ckpt, "tuned_seg_val": a["seg_val"],
                       "tuned_seg_test": a["splits"]["test"]["seg"], "tuned_alpha": a["alpha"],
                       "tuned_min_size": a["min_size"], "tuned_threshold": a.get("threshold"),
                       "tuned_truefg_seg_val": t["seg_val"], "tuned_truefg_seg_test": t["splits"]["test"]["seg"]})
    return result


def table(results: list[dict]) -> str:
    keys = [f"iou_{t}" for t in THRESHOLDS] + ["iou_tta", "iou_interior"]
    if any("iou_train" in r for r in results):
        keys.append("iou_train")
    parts = [p for p in ERROR_PARTS if any("errors" in r for r in results)]
    if any("seg_test" in r for r in results):
        keys += ["seg_val", "seg_test", "cc_seg_test"]
    if any("tuned_seg_test" in r for r in results):
        keys += ["tuned_seg_val", "tuned_seg_test", "tuned_truefg_seg_test"]
    names = {"iou_train": "IoU 0.5 on its training frame"}
    head = ["variant", "train → measure", "seeds", *[names.get(k, k.replace("iou_", "IoU ")) for k in keys],
            *[f"1 − IoU: {p}" for p in parts], "s / frame (tta)"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["variant"], r["direction"]), []).append(r)
    for (variant, direction), rs in groups.items():
        cells = [variant, direction, str(len(rs))]
        columns = [[r.get(k) for r in rs] for k in keys]
        columns += [[r["errors"][p] if "errors" in r else None for r in rs] for p in parts]
        for column in columns:
            v = np.array([x for x in column if x is not None], dtype=float)
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "—")
        cells.append(f"{np.mean([r['seconds'] for r in rs]):.1f} ({np.mean([r['seconds_tta'] for r in rs]):.1f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS),
                        help="built-in variants (none: --variant only)")
    parser.add_argument("--variant", action="append", default=[], help="name=override,override (adds a variant)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_foreground_iou")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--seg", action="store_true", help="also Table 1's FGNET rows (SEG on the test frames)")
    parser.add_argument("--tuned", action="store_true",
                        help="with --seg: also DISTILL-TUNED, the student fine-tuned on the same labeled crop and seed")
    parser.add_argument("--report", action="store_true", help="only print the table of the results kept in --out")
    parser.add_argument("--ensemble", action="store_true",
                        help="only the IoUs of each variant's kept seeds' FGNETs averaged, beside the seeds' mean")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the IoUs of kept runs again from their checkpoints (columns added later)")
    args = parser.parse_args()
    if args.tuned and not args.seg:
        parser.error("--tuned adds rows to Table 1's: it needs --seg")
    variants = {k: VARIANTS[k] for k in args.variants}
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[name] = [o for o in overrides.split(",") if o]
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    if args.ensemble:
        md = ensembles([r for r in results if r["variant"] in variants and r["seed"] in args.seeds], args.data)
        (args.out / "ensemble.md").write_text(md)
        print(md)
        return
    if args.report:
        print(table([r for r in results if r["variant"] in variants and r["seed"] in args.seeds]))
        return
    by_key = {(r["variant"], r["direction"], r["seed"]): r for r in results}
    distill = args.out / "table1_first" / "aff_distill"
    for name, overrides in variants.items():
        for seed in args.seeds:
            for a, b in DIRECTIONS:
                direction = f"{a:03d} → {b:03d}"
                row = by_key.get((name, direction, seed))
                run_dir = args.out / name / f"{a:03d}_to_{b:03d}" / f"seed_{seed}"
                if row is None:
                    t0 = time.perf_counter()
                    if name in PSEUDO:
                        teacher_dir = args.out / PSEUDO[name] / f"{a:03d}_to_{b:03d}" / f"seed_{seed}"
                        teacher = train(VARIANTS[PSEUDO[name]], seed, a, teacher_dir, args.data)  # resumes
                        overrides = [*VARIANTS[name], *pseudo_overrides(teacher, b, run_dir / "pseudo", args.data)]
                    ckpt = train(overrides, seed, a, run_dir, args.data)
                    row = {"variant": name, "direction": direction, "seed": seed, "overrides": overrides,
                           "checkpoint": ckpt, "train_seconds": time.perf_counter() - t0,
                           **measure(ckpt, b, args.data, a)}
                    results.append(row)
                elif args.remeasure:
                    row.update(measure(row["checkpoint"], b, args.data, a))
                elif not args.seg or (row.get("fg_thresholds") == SEG_THRESHOLDS
                                      and (not args.tuned or "tuned_seg_test" in row)):
                    continue
                if args.seg:
                    first = not distill.is_dir()
                    where = args.out / "table1_first" if first else run_dir / "table1"
                    tuned = (train([], seed, a, run_dir / "tuned", args.data, "hela_distill_tuned_cpu")
                             if args.tuned else None)
                    row.update(table1_rows(row["checkpoint"], where, args.data, None if first else distill, tuned))
                results_path.write_text(json.dumps(results, indent=1))
                print(f"{name} {direction} seed {seed}: IoU@0.5 {row['iou_0.5']:.3f}, tta {row['iou_tta']:.3f}"
                      + (f", SEG test {row['seg_test']:.3f}" if "seg_test" in row else "")
                      + (f", DISTILL-TUNED + FGNET {row['tuned_seg_test']:.3f}" if "tuned_seg_test" in row else ""),
                      flush=True)
    md = table([r for r in results if r["variant"] in variants])
    (args.out / "table.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
