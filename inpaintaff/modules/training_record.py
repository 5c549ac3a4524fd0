"""The record of what shaped a training run, kept in every checkpoint it writes and compared when a
run resumes from one (``ckpt_path=``): the model and data settings, the content of every file the
run trains or validates on, and the checkpoint it starts from (``model.init_from``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inpaintaff.data.augment import Augment
from inpaintaff.io.records import differences, make_record
from inpaintaff.utils.errors import InputError

# Data settings that say where files are or how they are loaded, not what is trained on (their
# content is in the record's inputs).
_NOT_SHAPING = ("root", "images", "masks", "teacher_dir", "num_workers", "_target_")


# Settings added after runs were first recorded, with the value that runs without them had.
LATER_SETTINGS: dict[str, dict[str, Any]] = {
    "data": {"augment": asdict(Augment()), "label_draw": "random"},
    "model": {"refine": 0, "boundary_weight": 0.0, "train_layers": "all"},
}


def with_later_settings(group: str, saved: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded ``group`` settings (data, model) with those added later, and set today, filled in as
    they were before them."""
    later = {k: v for k, v in LATER_SETTINGS[group].items() if k in now}
    merged = {**later, **saved}
    for key, value in later.items():  # keys added later inside a recorded mapping (data.augment.gamma)
        if isinstance(value, Mapping) and isinstance(saved.get(key), Mapping):
            merged[key] = {**value, **saved[key]}
    return merged


def training_inputs(data: Any) -> dict[str, Path | None]:
    """Every file a run of ``data``'s train mode reads, keyed by split, frame and role."""
    splits = {"raw": ["raw", "val"], "affinities": ["raw", "val"], "labeled": ["train", "val"]}[data.train_mode]
    files: dict[str, Path | None] = {}
    for split in splits:
        for ref in data.frames(split):
            files[f"{split}/{ref.name}/image"] = ref.raw_path
            if data.train_mode == "labeled":
                files[f"{split}/{ref.name}/labels"] = ref.gt_path
            if data.train_mode == "affinities":
                from inpaintaff.io.affinities import aff_path

                path = aff_path(data.teacher_dir, data.dataset, ref.seq, ref.frame, ref.stem)
                if not path.is_file():
                    raise InputError(path, "affinity file not found (the teacher's affinities of this frame: "
                                     "data.teacher_dir is task=inpaintaff's out_dir)")
                files[f"{split}/{ref.name}/teacher"] = path
    return files


def training_record(cfg: DictConfig, data: Any) -> dict:
    """The record of this training run (see the module)."""
    data_cfg = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k not in _NOT_SHAPING}
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    init_from = model_cfg.pop("init_from", None) if isinstance(model_cfg, dict) else None
    return make_record({"model": model_cfg, "data": data_cfg, "seed": int(cfg.seed)}, training_inputs(data),
                       {"init_from": init_from})


def check_resumed_record(ckpt_path: str | Path, record: dict) -> None:
    """Resuming from a checkpoint of another record (other settings, or changed data) is an error
    naming what differs; checkpoints written before records existed are resumed as they are."""
    from inpaintaff.modules.loading import checkpoint_meta

    saved = checkpoint_meta(ckpt_path).get("record")
    if saved is None:
        return
    settings = dict(saved.get("settings") or {})
    for group in LATER_SETTINGS:
        old, new = settings.get(group), (record.get("settings") or {}).get(group)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            settings[group] = with_later_settings(group, old, new)
    saved = {**saved, "settings": settings}
    diff = differences(saved, record)
    if diff:
        raise InputError(ckpt_path, "ckpt_path: this checkpoint was trained with other settings or data ("
                         + "; ".join(diff[:6]) + (f"; {len(diff) - 6} more" if len(diff) > 6 else "")
                         + "): resume with the run's own settings and data, or start a new run from its weights "
                         "(model.init_from where the model takes it)")
