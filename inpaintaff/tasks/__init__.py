"""Predict-side tasks. ``conf/task/<name>.yaml`` sets ``task.name``; ``inpaintaff.tasks.<name>.run``
does the work and returns a dict of results."""

from __future__ import annotations

import importlib

from omegaconf import DictConfig


def run_task(cfg: DictConfig) -> dict:
    """Dispatch to ``inpaintaff.tasks.<cfg.task.name>.run(cfg)``."""
    name = cfg.task.name
    try:
        module = importlib.import_module(f"inpaintaff.tasks.{name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"unknown task {name!r}: no module inpaintaff.tasks.{name}") from exc
    return module.run(cfg)
