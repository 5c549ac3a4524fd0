"""Sub-tasks of a task: another task's config composed from ``conf/``, run in this process."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from inpaintaff.utils.resolvers import CONF_DIR


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """``conf/<config_name>.yaml`` composed by Hydra with ``overrides``, unresolved (inside a Hydra app
    or not)."""
    if GlobalHydra.instance().is_initialized():
        return hydra.compose(config_name=config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra.compose(config_name=config_name, overrides=overrides)


def load_data(data: DictConfig) -> Any:
    """The data module ``data`` (``cfg.data``) configures, with its data prepared."""
    dm = hydra.utils.instantiate(data)
    dm.prepare_data()
    return dm


def task_group(name: str) -> DictConfig:
    """``conf/task/<name>.yaml`` as composed by Hydra (its defaults list applied), unresolved."""
    return compose("predict", [f"task={name}"]).task


def subtask_config(cfg: DictConfig, name: str, task: Mapping[str, Any], output_dir: str | Path,
                   top: Mapping[str, Any] | None = None) -> DictConfig:
    """``cfg`` with its task replaced by task ``name`` updated with ``task``, writing into ``output_dir``.

    Data, trainer, paths and seed stay the caller's; ``top`` sets other keys by dotted path
    (e.g. ``{"ckpt": ..., "data.splits.predict": [...]}``).
    """
    sub = cfg.copy()
    with open_dict(sub):
        sub.task = OmegaConf.merge(task_group(name), OmegaConf.create(dict(task)))
        sub.paths.output_dir = str(output_dir)
        for key, value in (top or {}).items():
            OmegaConf.update(sub, key, value, merge=False, force_add=True)
    return sub


def run_subtask(sub: DictConfig) -> dict:
    """Run a composed sub-task as ``predict.py`` would (output folders checked first)."""
    from inpaintaff.tasks import run_task
    from inpaintaff.utils.signals import stop_if_terminated

    stop_if_terminated()  # SIGTERM during the sub-task before: stop here, not in the next one
    return run_task(sub)
