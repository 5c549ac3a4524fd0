"""Loading trained LightningModules for prediction, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from inpaintaff.utils.errors import InputError


def inference_device(cfg) -> str:
    """CUDA when the trainer config allows an accelerator and one is there, else CPU."""
    wants_gpu = str(cfg.trainer.get("accelerator", "auto")) in ("gpu", "cuda", "auto")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


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
