"""``task=selfsup``: the self-supervised recipe on a user's images, from unlabeled images to a shipped
student, in one command (each stage resumes: rerun the same command).

    python predict.py experiment=selfsup data=folder data.images=DIR

Every stage works at one nucleus size (``task.diameter``): images are resized so that their
nuclei have it (``data.diameter``, or a per-image estimate from the intensity foreground).

1. ``inpaint/`` (``task.teacher=net`` only): the inpainting net trained on crops of the ``raw``
   images (``train.py``, ``task.inpaint.overrides``), or ``task.inpaint_ckpt`` as it is;
2. ``teacher/``: the engine's affinities (``task=inpaintaff``) of ``task.engine.images`` images of
   the ``raw`` split, with the analytic inpainter or the net of stage 1, patches skipped by the
   image's intensity (no labels), files named like the images;
3. ``student/``: the DISTILL student trained on them (``task.student.overrides``);
4. ``fgnet/`` (when images of ``task.foreground.split`` have masks): FGNET started from the
   student's weights and fine-tuned on those few masks (``task.foreground``), shipped beside the
   student as ``student.fgnet.ckpt``, which the folder command takes with ``--model student.ckpt``;
4b. ``tune/`` (``task.tune``, when images of ``task.foreground.split`` have masks): the student
   fine-tuned on the same labeled nuclei as FGNET with AFFNET's Dice loss (DISTILL-TUNED), so that
   both nets spend one label budget; it is shipped instead of the student, which stays in
   ``student/student.ckpt`` (FGNET and the tuning start from there);
5. ``student.ckpt`` and ``student.alpha.json``: the (tuned) student without optimizer state, and α
   and the fragment size for it (and FGNET's threshold). With masks (``data.masks``) for images of
   ``task.select.split``, they are chosen there, per foreground of ``task.select.foregrounds``, as
   the folder command's ``task.select`` does (FGNET: the recipe's own, else
   ``task.select.fgnet_ckpt``); without, ``task.select.default`` is stored, and the log says so.

Stages 1-3 never read a mask: they run with ``data.masks=null``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from inpaintaff.data.scaled import TRAINING_SCALE
from inpaintaff.io.files import write_json
from inpaintaff.io.records import content_sha1, differences, make_record, source_settings
from inpaintaff.modules.export import slim_checkpoint
from inpaintaff.segment.alpha import ALPHA_FILE, checkpoint_alpha_file, checkpoint_fgnet_file, load_alpha_file
from inpaintaff.segment.scale import estimate_scale, rescale_image
from inpaintaff.tasks.compose import compose, run_subtask, subtask_config
from inpaintaff.tasks.inpaintaff.patches import centred_window
from inpaintaff.tasks.training import check_no_ddp, data_container, fit_or_resume
from inpaintaff.utils.config import typed
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

TEACHERS = ("analytic", "net")
RESULT_NAME = "selfsup_result.json"
SHIP_RECORD = "ship_record.json"
BASE_STUDENT = "student.ckpt"  # in student/: the student as trained, slimmed; FGNET and the tuning start from it
# The label budget's keys (task.foreground.data): FGNET and the tuned student learn from the same nuclei.
BUDGET_KEYS = ("label_frames", "max_instances", "label_draw")
SELECT_RECORD = "select_record.json"


@dataclass
class StageSpec:
    """A training stage: ``train.py`` overrides (model, trainer, sizes) and data keys set on top."""

    overrides: list[str] = MISSING
    data: dict[str, Any] = MISSING


@dataclass
class EngineSpec:
    """Stage 2: how many images, and the ``task=inpaintaff`` settings."""

    images: int | None = MISSING  # of the raw split, drawn with the seed; null: all
    task: dict[str, Any] = MISSING


@dataclass
class SelectSpec:
    """Stage 4: α and the fragment size, on images with masks, or the defaults."""

    split: str = MISSING
    foregrounds: list[str] = MISSING
    fgnet_ckpt: str = MISSING  # the FGNET the fgnet entry is chosen with (the one used with the student)
    alphas: list[float] = MISSING
    min_sizes: list[int] = MISSING
    seg_tolerance: float = MISSING
    min_merged: int = MISSING
    thresholds: list[float] = MISSING  # FGNET's, chosen with α ([]: 0.5)
    default: dict[str, Any] = MISSING  # {alpha, min_size}: stored when no image has a mask


@dataclass
class ForegroundStageSpec:
    """Stage 4: FGNET from the student, on the masked images of ``split`` (``train.py`` overrides and
    data keys, e.g. the label budget)."""

    enabled: bool = MISSING
    split: str = MISSING
    overrides: list[str] = MISSING
    data: dict[str, Any] = MISSING


@dataclass
class TuneStageSpec:
    """Stage 4b: the student fine-tuned on FGNET's labeled nuclei (``train.py`` overrides, data keys;
    the label budget is ``task.foreground.data``'s)."""

    enabled: bool = MISSING
    overrides: list[str] = MISSING
    data: dict[str, Any] = MISSING


@dataclass
class SelfsupSettings:
    """``task=selfsup`` (defaults in ``conf/task/selfsup.yaml``)."""

    name: str = MISSING
    out_dir: str = MISSING
    diameter: float = MISSING
    teacher: str = MISSING  # analytic | net
    inpaint_ckpt: str | None = MISSING  # teacher=net: this inpainting net instead of training stage 1
    inpaint: StageSpec = field(default_factory=StageSpec)
    engine: EngineSpec = field(default_factory=EngineSpec)
    student: StageSpec = field(default_factory=StageSpec)
    foreground: ForegroundStageSpec = field(default_factory=ForegroundStageSpec)
    tune: TuneStageSpec = field(default_factory=TuneStageSpec)
    select: SelectSpec = field(default_factory=SelectSpec)
    ship: str = MISSING


def check_settings(t: SelfsupSettings) -> None:
    """Values that would only fail deep inside a stage, refused up front."""
    if t.teacher not in TEACHERS:
        raise ValueError(f"task.teacher must be one of {TEACHERS}, got {t.teacher!r}")
    if not t.diameter > 0:
        raise ValueError(f"task.diameter must be a positive number of pixels, got {t.diameter}")
    if t.engine.images is not None and t.engine.images < 1:
        raise ValueError(f"task.engine.images must be >= 1 (or null: every raw image), got {t.engine.images}")


def teacher_images(dm: Any, refs: list, k: int | None, diameter: float, seed: int, window: int | None = None,
                   threshold: float | None = None) -> list[str]:
    """``k`` images of ``refs`` for the engine, in a seeded random order, leaving out those whose
    nucleus size cannot be estimated (they would be taught at the wrong scale) and, with
    ``threshold``, those without a pixel above it in the (centred ``window`` of the) resized image,
    where the engine would find no patch; all usable ones for None. The estimate is the engine's own
    (``task.scale``'s defaults), from the intensity foreground."""
    order = np.random.default_rng(seed).permutation(len(refs))
    chosen, unknown, empty = [], [], []
    for i in order:
        ref = refs[int(i)]
        image = dm.load_image(ref)
        decision = estimate_scale(image, diameter, dm.diameter, TRAINING_SCALE, ref.name)
        if decision.source in ("unreliable", "unknown"):
            unknown.append(ref.stem)
            continue
        if threshold is not None:
            image = rescale_image(image, decision.factor)
            y0, x0, h, w = centred_window(image.shape, window) if window else (0, 0, *image.shape)
            if not (image[y0 : y0 + h, x0 : x0 + w] > threshold).any():
                empty.append(ref.stem)
                continue
        chosen.append(ref.stem)
        if k is not None and len(chosen) == k:
            break
    for names, why in ((unknown, "their nucleus size could not be estimated"),
                       (empty, "no pixel above the engine's intensity threshold in their window")):
        if names:
            log.info("%d image(s) left out of the engine's: %s (%s%s)", len(names), why, ", ".join(names[:5]),
                     ", ..." if len(names) > 5 else "")
    if not chosen:
        raise InputError(getattr(dm, "root", None), f"no raw image to run the engine on: {len(unknown)} of unknown "
                         f"nucleus size (set data.diameter), {len(empty)} without a pixel above the intensity "
                         "threshold in their window (lower task.engine.task.foreground.threshold)")
    return sorted(chosen)


def unlabeled_data(cfg: DictConfig) -> DictConfig:
    """The recipe's data settings for stages 1-3: the masks left out, so that no stage reads them."""
    data = cfg.data.copy()
    with open_dict(data):
        if "masks" in data:
            data.masks = None
    return data


def train_stage(cfg: DictConfig, t: SelfsupSettings, spec: StageSpec, data: dict[str, Any], out: Path) -> dict:
    """One training stage: ``train.py``'s config composed from ``spec.overrides``, on the recipe's
    unlabeled data with ``spec.data`` and ``data`` on top, at the recipe's nucleus size."""
    tcfg = compose("train", list(spec.overrides))
    check_no_ddp(tcfg, f"task=selfsup ({out.name})")
    with open_dict(tcfg):
        tcfg.paths = OmegaConf.merge(cfg.paths, {"output_dir": str(out)})
        tcfg.seed = cfg.seed
        tcfg.data = OmegaConf.merge(unlabeled_data(cfg), {**spec.data, **data, "resize_to": t.diameter})
    return fit_or_resume(tcfg, out, {"overrides": list(spec.overrides), "data": data_container(tcfg)})


def raw_images(cfg: DictConfig) -> tuple[Any, list]:
    """The unlabeled data module and the refs of its raw split (the images the recipe learns from)."""
    dm = hydra.utils.instantiate(unlabeled_data(cfg))
    dm.prepare_data()
    refs = dm.frames("raw")
    if not refs:
        raise InputError(getattr(dm, "root", None), "the raw split holds no image to learn from")
    if any(r.stem is None for r in refs):
        raise ValueError("task=selfsup runs on a plain folder of images: data=folder data.images=DIR")
    return dm, refs


def teacher_stage(cfg: DictConfig, t: SelfsupSettings, names: list[str], ckpt: str | None, out: Path) -> Path:
    """Stage 2: the engine's affinities of ``names`` (keyed by name) in ``out/affinities``."""
    task = {**t.engine.task, "out_dir": str(out / "affinities"),
            "inpainter": "net" if t.teacher == "net" else "gaussian", "analytic_diameter": t.diameter}
    sub = subtask_config(cfg, "inpaintaff", task, out, top={"ckpt": ckpt})
    with open_dict(sub):
        sub.data = OmegaConf.merge(unlabeled_data(sub), {"splits": {"predict": names}})
    run_subtask(sub)
    return out / "affinities"


def ship_checkpoint(checkpoint: str, dst: Path, out: Path, slimmed: Path | None = None) -> Path:
    """A trained checkpoint without optimizer state at ``dst`` (``slimmed``: a copy of that file, already
    slimmed from it); kept as it is when it was shipped from this very checkpoint before (saving again
    would change its bytes, and with them every record naming it)."""
    record, source = out / SHIP_RECORD, content_sha1(checkpoint)
    if dst.is_file() and record.is_file() and json.loads(record.read_text()).get("source_sha1") == source:
        return dst
    if slimmed is not None:
        shutil.copyfile(slimmed, dst)
    else:
        slim_checkpoint(checkpoint, dst)
    write_json(record, {"source": str(checkpoint), "source_sha1": source, "shipped": str(dst)})
    return dst


def base_student(checkpoint: str, t: SelfsupSettings, out: Path) -> Path:
    """The student as trained, without optimizer state, in ``student/student.ckpt``: FGNET and the
    tuned student start from it. A recipe run of an earlier version shipped it as ``task.ship``
    itself; that file is taken over byte for byte, so that the nets started from it are kept."""
    dst, record, earlier = out / "student" / BASE_STUDENT, out / SHIP_RECORD, Path(t.ship)
    shipped_before = (earlier.is_file() and record.is_file()
                      and json.loads(record.read_text()).get("source_sha1") == content_sha1(checkpoint))
    return ship_checkpoint(checkpoint, dst, dst.parent, earlier if shipped_before else None)


def labeled_stage(cfg: DictConfig, t: SelfsupSettings, overrides: list[str], data: dict[str, Any], student: str,
                  names: list[str], out: Path) -> dict:
    """A net started from the student's weights and trained on the masks of ``names`` (``train.py``'s
    ``overrides``, ``data`` and the label budget on top); resumes, or is read back when finished."""
    tcfg = compose("train", [*overrides, f"model.init_from={student}"])
    check_no_ddp(tcfg, f"task=selfsup ({out.name})")
    budget = {k: t.foreground.data[k] for k in BUDGET_KEYS if k in t.foreground.data}
    with open_dict(tcfg):
        tcfg.paths = OmegaConf.merge(cfg.paths, {"output_dir": str(out)})
        tcfg.seed = cfg.seed
        tcfg.data = OmegaConf.merge(cfg.data, {**data, **budget, "train_mode": "labeled", "resize_to": t.diameter,
                                               "splits": {"train": names, "val": []}})
    key = {"overrides": list(overrides), "data": data_container(tcfg), "init_sha1": content_sha1(student)}
    return fit_or_resume(tcfg, out, key)


def foreground_stage(cfg: DictConfig, t: SelfsupSettings, student: str, labeled: list[str], out: Path) -> dict | None:
    """Stage 4: FGNET started from the student's weights and trained on the masks of ``labeled`` (the
    images of ``task.foreground.split`` that have one); None without such images (or the stage off)."""
    if not (t.foreground.enabled and labeled):
        return None
    trained = labeled_stage(cfg, t, t.foreground.overrides, t.foreground.data, student, labeled, out)
    log.info("FGNET from the student on %d labeled nuclei (of the %d image(s) of split %r with a mask)",
             trained["n_train_instances"], len(labeled), t.foreground.split)
    return trained


def tune_stage(cfg: DictConfig, t: SelfsupSettings, student: str, labeled: list[str], out: Path) -> dict | None:
    """Stage 4b: the student fine-tuned with AFFNET's Dice loss on the labeled nuclei FGNET learns from
    (the masks of ``labeled``, the same label budget); None without such images (or the stage off)."""
    if not (t.tune.enabled and labeled):
        return None
    trained = labeled_stage(cfg, t, t.tune.overrides, t.tune.data, student, labeled, out)
    log.info("the student fine-tuned on %d labeled nuclei; it is shipped instead of the student",
             trained["n_train_instances"])
    return trained


def masked_refs(cfg: DictConfig, split: str) -> tuple[Any, list]:
    """The data module and the images of ``split`` that have a mask (none without ``data.masks``)."""
    if not cfg.data.get("masks"):
        return None, []
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    return dm, [r for r in dm.frames(split) if r.gt_path is not None]


def select_record(t: SelfsupSettings, dm: Any, refs: list, student: Path, fgnet_ckpt: str) -> dict:
    """What shapes stage 5: its settings, the selection images and masks, the student and FGNET."""
    inputs = {f"{r.stem}/{kind}": path for r in refs for kind, path in (("image", r.raw_path), ("mask", r.gt_path))}
    fgnet = fgnet_ckpt if "fgnet" in t.select.foregrounds else None
    return make_record({"select": asdict(t.select), "data": {**source_settings(dm), "diameter": dm.diameter}},
                       inputs, {"student": student, "fgnet": fgnet})


def select_stage(cfg: DictConfig, t: SelfsupSettings, student: Path, out: Path, fgnet: Path | None = None) -> dict:
    """Stage 5: α and the fragment size (and FGNET's threshold) for the shipped student, stored beside
    it (``<student>.alpha.json``, one entry per foreground), chosen with ``fgnet`` (else
    ``task.select.fgnet_ckpt``); read back when its record is unchanged."""
    target = checkpoint_alpha_file(student)
    fgnet_ckpt = str(fgnet) if fgnet is not None else t.select.fgnet_ckpt
    dm, refs = masked_refs(cfg, t.select.split)
    names = [r.stem for r in refs]
    entries: dict[str, Any] = {}
    if names:
        record = select_record(t, dm, refs, student, fgnet_ckpt)
        kept = json.loads((out / SELECT_RECORD).read_text()) if (out / SELECT_RECORD).is_file() else None
        if kept is not None and target.is_file() and not differences(kept.get("record"), record):
            log.info("stage 5 read back: alpha chosen earlier on the same %d image(s) for this student (%s)",
                     len(names), target)
            return kept["result"]
    if not names:
        log.warning("no image of split %r has a mask (data.masks): the student ships with the default alpha %g "
                    "and fragment size %d (task.select.default), not values chosen on your images",
                    t.select.split, t.select.default["alpha"], t.select.default["min_size"])
        for fg in t.select.foregrounds:
            entries[fg] = {"alpha": float(t.select.default["alpha"]), "min_size": int(t.select.default["min_size"]),
                           "label": f"DISTILL + {fg.upper()}", "chosen_on": "default (no masks)",
                           "n_merged_objects": None, "curve": []}
        write_json(target, entries)
        return {"alpha_file": str(target), "chosen_on": "default", "entries": entries}
    for fg in t.select.foregrounds:
        run_dir = out / f"select_{fg}"
        foreground = {"source": fg, **({"ckpt": fgnet_ckpt, "threshold": 0.5} if fg == "fgnet" else {})}
        task = {"affinities_ckpt": str(student), "foreground": foreground, "split": t.select.split,
                "out_dir": str(run_dir), "overwrite": True, "alpha": float(t.select.default["alpha"]),
                "min_size": int(t.select.default["min_size"]),  # replaced by the choice
                "select": {"enabled": True, "split": t.select.split, "alphas": list(t.select.alphas),
                           "min_sizes": list(t.select.min_sizes), "seg_tolerance": t.select.seg_tolerance,
                           "min_merged": t.select.min_merged, "thresholds": list(t.select.thresholds)}}
        sub = subtask_config(cfg, "segment_folder", task, run_dir,
                             top={f"data.splits.{t.select.split}": names})
        result = run_subtask(sub)
        entries.update(load_alpha_file(run_dir / ALPHA_FILE))
        log.info("student + %s: alpha %g, min size %d chosen on %d image(s) with masks (SEG %.3f)", fg.upper(),
                 result["selection"]["alpha"], result["selection"]["min_size"], len(names), result["selection"]["seg"])
    write_json(target, entries)
    result = {"alpha_file": str(target), "chosen_on": t.select.split, "n_images": len(names), "entries": entries}
    write_json(out / SELECT_RECORD, {"record": record, "result": result})
    return result


def run(cfg: DictConfig) -> dict:
    t = typed(cfg.task, SelfsupSettings)
    check_settings(t)
    out = Path(t.out_dir).resolve()
    seconds: dict[str, float] = {}
    dm, refs = raw_images(cfg)
    names = [r.stem for r in refs]
    skip = t.engine.task.get("foreground") or {}
    threshold = skip.get("threshold") if skip.get("source") == "intensity" else None
    teacher_names = teacher_images(dm, refs, t.engine.images, t.diameter, int(cfg.seed),
                                   t.engine.task.get("window"), threshold)
    log.info("self-supervised recipe on %d raw image(s) (the engine on %d), nuclei resized to %g px, %s teacher",
             len(names), len(teacher_names), t.diameter, t.teacher)
    ckpt = None
    if t.teacher == "net" and t.inpaint_ckpt:
        ckpt = t.inpaint_ckpt
        log.info("stage 1 (inpainting net) skipped: the teacher is task.inpaint_ckpt=%s", ckpt)
    elif t.teacher == "net":
        t0 = time.perf_counter()
        inpaint = train_stage(cfg, t, t.inpaint, {"train_mode": "raw", "splits": {"raw": names, "val": []}},
                              out / "inpaint")
        ckpt = inpaint["checkpoint"]
        seconds["inpaint"] = time.perf_counter() - t0
    else:
        log.info("stage 1 (inpainting net) skipped: task.teacher=analytic")
    t0 = time.perf_counter()
    teacher_dir = teacher_stage(cfg, t, teacher_names, ckpt, out / "teacher")
    seconds["teacher"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    student = train_stage(cfg, t, t.student, {"train_mode": "affinities", "teacher_dir": str(teacher_dir),
                                              "splits": {"raw": teacher_names, "val": []}}, out / "student")
    seconds["student"] = time.perf_counter() - t0
    base = base_student(student["checkpoint"], t, out)
    wants_labels = t.foreground.enabled or t.tune.enabled
    labeled = [r.stem for r in masked_refs(cfg, t.foreground.split)[1]] if wants_labels else []
    if wants_labels and not labeled:
        log.info("stages 4 and 4b (FGNET, tuned student) skipped: no image of split %r has a mask (data.masks)",
                 t.foreground.split)
    t0 = time.perf_counter()
    fgnet_train = foreground_stage(cfg, t, str(base), labeled, out / "fgnet")
    fgnet = None if fgnet_train is None else ship_checkpoint(fgnet_train["checkpoint"],
                                                             checkpoint_fgnet_file(t.ship), out / "fgnet")
    seconds["fgnet"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tuned = tune_stage(cfg, t, str(base), labeled, out / "tune")
    seconds["tune"] = time.perf_counter() - t0
    shipped = ship_checkpoint((tuned or student)["checkpoint"], Path(t.ship), out, None if tuned else base)
    t0 = time.perf_counter()
    alpha = select_stage(cfg, t, shipped, out, fgnet)
    seconds["select"] = time.perf_counter() - t0
    result = {"student": str(shipped), "tuned": tuned is not None, "base_student": str(base),
              "fgnet": None if fgnet is None else str(fgnet), "alpha": alpha,
              "teacher": t.teacher, "diameter": t.diameter,
              "inpaint_ckpt": ckpt, "teacher_images": teacher_names, "n_raw_images": len(names),
              "seconds": seconds, "student_train": student, "tune_train": tuned}
    write_json(out / RESULT_NAME, result)
    log.info("the student: %s (alpha file %s); seconds per stage this run: %s", shipped, alpha["alpha_file"],
             {k: round(v) for k, v in seconds.items()})
    return result

