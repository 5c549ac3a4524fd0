"""Checks ``train.py`` makes before any training step: a run that would not train, a folder it could
not write its checkpoints or logs into, crops smaller than the net takes, and a ``ckpt_path`` it
could not resume from are errors naming the key or the file."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from inpaintaff.io.files import ensure_writable_dir
from inpaintaff.modules.loading import TASK_OF, checkpoint_kind
from inpaintaff.offsets import MAX_OFFSET, OFFSETS
from inpaintaff.utils.errors import InputError

# Config keys of callbacks and loggers that name the folders they write into.
_FOLDER_KEYS = ("dirpath", "save_dir")


def check_training_config(cfg: DictConfig) -> None:
    """Before anything is built: the trainer's limits allow a step, and every folder a callback or
    logger writes into (checkpoints: after training) is writable."""
    trainer = cfg.get("trainer") or {}
    for key in ("max_steps", "max_epochs"):
        value = trainer.get(key)
        if value is not None and (int(value) == 0 or int(value) < -1):
            raise ValueError(f"trainer.{key} must be >= 1 (or -1: no limit), got {value}: the run would train "
                             "nothing and write no checkpoint")
    for group in ("callbacks", "logger"):
        for entry in (cfg.get(group) or {}).values():
            if isinstance(entry, DictConfig) and "_target_" in entry:
                for key in _FOLDER_KEYS:
                    if entry.get(key):
                        ensure_writable_dir(entry[key])


def min_crop_size(model: Any) -> tuple[int, str]:
    """The smallest training crop ``model``'s net takes, and why."""
    depth = getattr(getattr(model, "net", None), "depth", None)
    need, why = 1, []
    if depth:
        need = 2**depth
        why.append(f"its U-Net halves the crop {depth} times (2**{depth} = {need})")
    if getattr(model, "out_channels", None) == len(OFFSETS):
        if MAX_OFFSET + 1 > need:
            need = MAX_OFFSET + 1
        why.append(f"the affinity offsets reach {MAX_OFFSET} px, so a crop needs {MAX_OFFSET + 1} to hold pairs "
                   "of every offset")
    return need, "; ".join(why)


def check_crop_size(datamodule: Any, model: Any) -> None:
    """``data.crop_size`` at least what the net takes."""
    crop = getattr(datamodule, "crop_size", None)
    if crop is None:
        return
    need, why = min_crop_size(model)
    if int(crop) < need:
        raise ValueError(f"data.crop_size={crop} is smaller than {type(model).__name__} takes: at least {need} "
                         f"({why})")


def check_resume_checkpoint(path: str | Path, model: Any) -> None:
    """``ckpt_path`` is a full Lightning checkpoint of ``model``'s kind whose weights fit it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ckpt_path: checkpoint to resume from not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a full checkpoint may hold objects the safe loader refuses
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            cause = " ".join(str(exc).split())[:200]
            raise InputError(path, f"ckpt_path: cannot read this checkpoint (truncated, or not a checkpoint?): "
                             f"{type(exc).__name__}: {cause}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError(path, "ckpt_path: not a Lightning checkpoint (no state_dict)")
    want = type(model).__name__
    kind = checkpoint_kind(path)
    if kind is not None and kind != want:
        raise InputError(path, f"ckpt_path: an {kind} checkpoint (the net of {TASK_OF[kind]}); this run trains an "
                         f"{want}: resume from a checkpoint of the same model (or choose model= to match)")
    have, fits = set(ckpt["state_dict"]), set(model.state_dict())
    if have != fits:
        missing, unexpected = sorted(fits - have), sorted(have - fits)
        raise InputError(path, f"ckpt_path: its weights do not fit this {want} ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected, e.g. {(missing or unexpected)[:3]}): a checkpoint of other "
                         "model settings (widths, depth, ...)")
    if "optimizer_states" not in ckpt:
        if "init_from" in inspect.signature(type(model).__init__).parameters:
            how = f"to fine-tune from its weights, start a new run with model.init_from={path} (and no ckpt_path)"
        else:
            how = "start a new run without ckpt_path"
        raise InputError(path, "ckpt_path: an exported checkpoint (weights only, no optimizer state, e.g. a shipped "
                         f"one): training cannot resume from it; {how}")
