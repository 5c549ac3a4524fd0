"""Predict-side tasks. ``conf/task/<name>.yaml`` sets ``task.name``; ``inpaintaff.tasks.<name>.run``
does the work and returns a dict of results."""

from __future__ import annotations

import importlib

from omegaconf import DictConfig

from inpaintaff.io.files import ensure_writable_dir

# Task keys that name output folders; every task also writes into paths.output_dir.
OUTPUT_KEYS = ("out_dir", "res_root")


def run_task(cfg: DictConfig) -> dict:
    """Dispatch to ``inpaintaff.tasks.<cfg.task.name>.run(cfg)``, once its output folders are writable."""
    name = cfg.task.name
    try:
        module = importlib.import_module(f"inpaintaff.tasks.{name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"unknown task {name!r}: no module inpaintaff.tasks.{name}") from exc
    for folder in [cfg.paths.output_dir, *(cfg.task.get(k) for k in OUTPUT_KEYS)]:
        if folder:
            ensure_writable_dir(folder)
    return module.run(cfg)
