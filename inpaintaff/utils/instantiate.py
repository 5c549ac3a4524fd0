"""Building Lightning objects from Hydra config groups."""

from __future__ import annotations

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None) -> list:
    """Instantiate every entry with a ``_target_`` of a config group (callbacks, loggers)."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if isinstance(c, DictConfig) and "_target_" in c]


def build_trainer(cfg: DictConfig, callbacks: list | None = None, **overrides) -> pl.Trainer:
    """Trainer from ``cfg.trainer`` with the configured loggers and callbacks, stopping on SIGTERM as on
    Ctrl-C (:mod:`inpaintaff.utils.signals`)."""
    from inpaintaff.utils.signals import StopOnSigterm, stop_if_terminated

    stop_if_terminated()  # a SIGTERM between two Lightning runs (a task chaining sub-tasks)
    loggers = instantiate_group(cfg.get("logger"))
    cbs = instantiate_group(cfg.get("callbacks")) + list(callbacks or []) + [StopOnSigterm()]
    return hydra.utils.instantiate(cfg.trainer, logger=loggers or False, callbacks=cbs, **overrides)
