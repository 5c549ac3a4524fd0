"""``task=label_budget``: one job of the paper's label-budget experiment (Fig. 4 and 5).

    python predict.py experiment=hela_label_budget        (the whole sweep: budgets x seeds)

Per job (one label budget, one seed), each stage resumable in the job's folder:

1. ``train/fgnet`` and ``train/affnet``: FGNET and AFFNET trained by ``train.py`` in this process,
   on the labeled instances the budget leaves (``task.label_frames`` frames drawn with the seed,
   each centre-cropped until it holds at most ``task.budget`` instances; ``all``: every labeled
   frame, uncropped);
2. the budget-independent InpaintAff affinities (``task.inpainters``), computed once into
   ``task.shared_dir`` and read by every job of the sweep;
3. ``task=table1``'s pipeline with these nets: FGNET foreground, AFFNET (and DISTILL) affinities,
   α and fragment size chosen per row on ``task.select_split``, the evaluation splits scored;
4. ``budget_result.json``: the budget, the labeled instances it left, and per row the chosen α,
   SEG and detection accuracy over IoU thresholds, which ``task=label_budget_report`` (run at the
   end of the multirun) gathers into the sweep's table and plots.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from inpaintaff.io.files import ensure_writable_dir, write_json
from inpaintaff.tasks import table1
from inpaintaff.tasks.compose import compose, load_data
from inpaintaff.tasks.training import check_no_ddp, data_container, fit_or_resume

log = logging.getLogger(__name__)

RESULT_NAME = "budget_result.json"
NETS = ("fgnet", "affnet")


def budget_data(budget: Any, label_frames: int | None) -> dict[str, int | None]:
    """``data.label_frames`` and ``data.max_instances`` of a budget (a count, or ``all``)."""
    if str(budget).lower() == "all":
        return {"label_frames": None, "max_instances": None}
    try:
        n = int(budget)
    except (TypeError, ValueError):
        raise ValueError(f"task.budget must be a number of labeled instances or 'all', got {budget!r}") from None
    if n < 1:
        raise ValueError(f"task.budget must be >= 1, got {n}")
    return {"label_frames": label_frames, "max_instances": n}


def train_overrides(overrides: Sequence[str], data: Mapping[str, int | None], seed: int) -> list[str]:
    """``train.py`` overrides of one net of a job: the preset's, then the budget and seed."""
    fmt = {k: "null" if v is None else str(v) for k, v in data.items()}
    return [*overrides, f"seed={seed}", f"data.label_frames={fmt['label_frames']}",
            f"data.max_instances={fmt['max_instances']}"]


# The job's data keys a net trains on as well (the preset keeps crop size, batches and train_mode).
DATA_SOURCE_KEYS = ("root", "dataset", "generate", "normalize")


def train_config(cfg: DictConfig, overrides: list[str], out: Path) -> DictConfig:
    """``train.py``'s config for one net: ``overrides`` composed, with the job's paths and data source
    (``data.root``, ``dataset``, train split, ...), so ``data.root=...`` on the command line reaches it."""
    tcfg = compose("train", overrides)
    check_no_ddp(tcfg, "task.train inside a sweep job")
    with open_dict(tcfg):
        tcfg.paths = OmegaConf.merge(cfg.paths, {"output_dir": str(out)})
        for key in DATA_SOURCE_KEYS:
            if key in cfg.data:
                tcfg.data[key] = cfg.data[key]
        tcfg.data.splits.train = cfg.data.splits.train
    return tcfg


def train_net(cfg: DictConfig, overrides: list[str], out: Path) -> dict:
    """Train one net with ``overrides`` (or resume it): its checkpoint and labeled instances
    (:func:`inpaintaff.tasks.training.fit_or_resume`)."""
    tcfg = train_config(cfg, overrides, out)
    return fit_or_resume(tcfg, out, {"overrides": overrides, "data": data_container(tcfg)})


@dataclass
class LabelBudgetSettings(table1.Table1Settings):
    """``task=label_budget`` (defaults in ``conf/task/label_budget.yaml``): Table 1's settings, plus the
    budget and how each job trains its nets."""

    budget: Any = MISSING  # a number of labeled instances, or "all"
    label_frames: int | None = MISSING
    train: dict[str, list[str]] = MISSING
    shared_dir: str = MISSING
    shared_seed: int = MISSING


def shared_inpainters(t: LabelBudgetSettings) -> dict:
    """The inpainters whose affinities this job computes (or reads) in ``task.shared_dir``."""
    return {n: s for n, s in t.inpainters.items()
            if n not in t.affinity_dirs and table1.rows_need(t.rows, "affinities", n)}


def shared_affinities(cfg: DictConfig, t: LabelBudgetSettings, frames: list[dict]) -> dict[str, str]:
    """The budget-independent InpaintAff affinities (``task.inpainters``), computed once into
    ``task.shared_dir``; returns name -> folder. Patches are skipped by ``task.inpaintaff.foreground``,
    which must not depend on FGNET (the same folder serves every budget)."""
    needed = shared_inpainters(t)
    if not needed:
        return {}
    if "dir" in table1.skip_sources(t):
        raise ValueError("task.inpaintaff.foreground.source may not hold 'dir' (FGNET) here: the shared "
                         "InpaintAff affinities must be the same for every label budget")
    only = replace(t, inpainters=needed, affinity_nets={}, affinity_dirs={},
                   rows=[table1.Row(label=n, affinities=n) for n in needed])
    fixed = cfg.copy()
    with open_dict(fixed):
        fixed.seed = t.shared_seed  # the engine's seed: the same affinities for every job
    sources = table1.affinity_stages(fixed, only, Path(t.shared_dir), frames)
    return {name: s["dir"] for name, s in sources.items()}


def settings(t: LabelBudgetSettings, seed: int) -> dict:
    """The task settings a job's result depends on."""
    keys = ("budget", "label_frames", "train", "rows", "shared_seed", "alphas", "min_sizes", "min_merged",
            "select_split", "eval_splits", "affinity_dirs", "inpainters", "inpaintaff", "metrics", "fg_thresholds")
    values = asdict(t)
    return {"seed": seed, **{k: values[k] for k in keys}, "distill": t.affinity_nets.get("distill")}


# Data keys that do not shape a job's result: where the files are (their content counts), loader workers.
DATA_IGNORED = ("root", "num_workers")


def job_record(cfg: DictConfig, t: LabelBudgetSettings, seed: int, dm: Any, trained: Mapping[str, Any]) -> dict:
    """What shaped a job's result (``io/records.py``): the task's and the data's settings, the bytes of
    every frame and label image it trains, selects or scores on, and every checkpoint's content (its
    own trained nets in ``trained``: net -> checkpoint path, and the ones it is given). A finished
    job is reused only when this record equals the one it wrote."""
    from inpaintaff.io.records import make_record

    data = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k not in DATA_IGNORED}
    inputs = {}
    for split in dict.fromkeys(["train", t.select_split, *t.eval_splits]):
        for ref in dm.frames(split):
            inputs[f"{split}/{ref.name}"] = ref.raw_path
            inputs[f"{split}/{ref.name}/labels"] = ref.gt_path
    ckpts = {**{f"train.{net}": trained.get(net) for net in NETS},
             **{f"affinity_nets.{k}": v for k, v in t.affinity_nets.items() if v and k not in NETS},
             **{f"inpainters.{k}": s.ckpt for k, s in t.inpainters.items() if s.inpainter == "net"}}
    ckpts = {k: p if p and Path(p).is_file() else None for k, p in ckpts.items()}  # a deleted net: no match
    return make_record({**settings(t, seed), "data": data}, inputs, ckpts)


def finished_job(done: Path, cfg: DictConfig, t: LabelBudgetSettings, seed: int) -> dict | None:
    """The result a finished job wrote, if its record equals today's; else None (the job runs again)."""
    from inpaintaff.io.records import differences

    if not done.exists():
        return None
    dm = load_data(cfg.data)
    previous = json.loads(done.read_text())
    trained = {net: (previous.get("train") or {}).get(net, {}).get("checkpoint") for net in NETS}
    diff = differences(previous.get("record"), job_record(cfg, t, seed, dm, trained))
    if diff:
        log.info("budget %s, seed %d: the finished result in %s was made otherwise (%s): running the job again",
                 t.budget, seed, done, "; ".join(diff[:6]))
        return None
    return previous


def run(cfg: DictConfig) -> dict:
    t: LabelBudgetSettings = table1.table_settings(cfg, LabelBudgetSettings)
    work = Path(cfg.paths.output_dir).resolve()
    seed = int(cfg.seed)
    data = budget_data(t.budget, t.label_frames)
    done = work / RESULT_NAME
    previous = finished_job(done, cfg, t, seed)
    if previous is not None:
        log.info("budget %s, seed %d: finished earlier (%s)", t.budget, seed, done)
        return previous
    if shared_inpainters(t):
        ensure_writable_dir(t.shared_dir)  # the shared affinities go there, after both nets are trained
    dm = load_data(cfg.data)
    trained = {}
    for net in NETS:
        out = work / "train" / net
        trained[net] = train_net(cfg, train_overrides(t.train[net], data, seed), out)
    frames = table1.predict_spec(dm, [t.select_split, *t.eval_splits])
    dirs = {**shared_affinities(cfg, t, frames), **t.affinity_dirs}
    job = replace(t, fgnet_ckpt=trained["fgnet"]["checkpoint"], affinity_dirs=dirs,
                  affinity_nets={**t.affinity_nets, "affnet": trained["affnet"]["checkpoint"]})
    report = table1.run(cfg, job, dm)
    split_names = [t.select_split, *t.eval_splits]
    rows = []
    for r in report["rows"]:
        row = {"label": r["label"], "method": r["method"], "alpha": r.get("alpha"), "min_size": r.get("min_size"),
               f"seg_{t.select_split}": r.get("seg_" + t.select_split)}
        for split, entry in r["splits"].items():
            row[f"seg_{split}"] = entry["seg"]
            row[f"n_gt_{split}"] = entry["n_gt"]
            row[f"detection_{split}"] = entry["detection"]
        rows.append(row)
    result = {"budget": str(t.budget), "seed": seed, **data,
              "n_labeled": trained["fgnet"]["n_train_instances"],
              "n_labeled_affnet": trained["affnet"]["n_train_instances"],
              "splits": split_names, "rows": rows, "train": trained, "affinity_dirs": dirs,
              "job_dir": str(work), "settings": settings(t, seed),
              "record": job_record(cfg, t, seed, dm, {net: trained[net]["checkpoint"] for net in NETS})}
    write_json(done, result)
    log.info("budget %s (%s labeled instances), seed %d: %s", t.budget, result["n_labeled"], seed,
             {r["label"]: r.get(f"seg_{t.eval_splits[0]}") for r in rows})
    return result
