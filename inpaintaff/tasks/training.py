"""Training a net inside a task (the label-budget jobs, the self-supervised recipe), resumable."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from inpaintaff.io.files import write_json
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

TRAIN_RESULT = "train_result.json"


def check_no_ddp(tcfg: DictConfig, where: str) -> None:
    """``ddp`` relaunches the command line in every rank, so each rank would rerun the calling task:
    refuse it (``ddp_spawn`` trains on several devices inside one task)."""
    strategy = str(tcfg.trainer.get("strategy", "auto"))
    if strategy.startswith("ddp") and "spawn" not in strategy:
        raise ValueError(f"{where}: trainer.strategy={strategy} inside a task that trains; use "
                         "trainer=ddp_spawn to train on several devices")


def fit_or_resume(tcfg: DictConfig, out: Path, key: dict[str, Any]) -> dict:
    """Train ``tcfg`` (a composed ``train.py`` config writing into ``out``) or take it up again.

    ``key`` says what the net was trained with (e.g. its overrides and data): a net finished with the
    same key (``out/train_result.json``) is not trained again; one finished with another key is an
    error naming the file; an interrupted one resumes from its ``last.ckpt``. Returns the key with
    the checkpoint, the step and the labeled instances it trained on.
    """
    from inpaintaff.modules.training_record import with_later_settings
    from inpaintaff.train import train

    done = out / TRAIN_RESULT
    key = json.loads(json.dumps(key))  # as JSON stores it, so that a finished net compares equal
    if done.exists():
        previous = json.loads(done.read_text())
        if isinstance(previous.get("data"), dict) and isinstance(key.get("data"), dict):
            previous["data"] = with_later_settings("data", previous["data"], key["data"])
        if any(previous.get(k) != v for k, v in key.items()):
            raise InputError(done, "this net was trained with other settings (overrides or data): use another "
                                   "output folder, or delete this net's folder to train it again")
        return previous
    last = out / "checkpoints" / "last.ckpt"
    if last.exists():
        log.info("resuming %s from %s", out.name, last)
        with open_dict(tcfg):
            tcfg.ckpt_path = str(last)
    result = train(tcfg)
    if not result.get("checkpoint"):
        raise RuntimeError(f"training in {out} wrote no checkpoint (callbacks.model_checkpoint is off?)")
    entry = {**key, "checkpoint": str(result["checkpoint"]), "global_step": result["global_step"],
             "n_train_instances": result["n_train_instances"], "metrics": result["metrics"]}
    write_json(done, entry)
    return entry


def data_container(tcfg: DictConfig) -> dict:
    """The training data settings, resolved, as a net's key records them."""
    return OmegaConf.to_container(tcfg.data, resolve=True)  # type: ignore[return-value]
