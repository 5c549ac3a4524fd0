"""Shared by the prediction tasks: devices, checkpoints with clear errors, frames still to write."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch

from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)


def inference_device(cfg) -> str:
    """CUDA when the trainer config allows an accelerator and one is there, else CPU."""
    wants_gpu = str(cfg.trainer.get("accelerator", "auto")) in ("gpu", "cuda", "auto")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def frames_to_write(dm, split: str, path_of: Callable[[str, int], Path], overwrite: bool):
    """(frame, output path) for the frames of ``split`` whose output is still missing (or all, to
    overwrite); also returns every output path, written before or not."""
    todo, paths = [], []
    for ref in dm.frames(split):
        path = path_of(ref.seq, ref.frame)
        paths.append(str(path))
        if path.exists() and not overwrite:
            log.info("%s exists, skipped", path)
        else:
            todo.append((ref, path))
    return todo, paths


def load_module(cls: type[pl.LightningModule], ckpt: str | Path | None, device: str | torch.device = "cpu"):
    """``cls.load_from_checkpoint(ckpt)`` in eval mode; missing or incompatible files are clear errors."""
    if not ckpt:
        raise InputError(None, f"a checkpoint is needed: pass ckpt=/path/to/{cls.__name__}.ckpt")
    path = Path(ckpt)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        module = cls.load_from_checkpoint(path, map_location=device)
    except Exception as exc:  # wrong class, truncated file, other hyperparameters ...
        raise InputError(path, f"not a compatible {cls.__name__} checkpoint ({type(exc).__name__}: {exc})") from exc
    return module.eval().to(device)
