"""Inference and evaluation tasks: `python predict.py task=inpaintaff|segment|report ...`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import inpaintaff.utils.threads  # noqa: F401  (first: torch's idle threads sleep, see the module)
from inpaintaff.tasks import run_task
from inpaintaff.utils.signals import sigterm_stops


@hydra.main(version_base="1.3", config_path="inpaintaff/conf", config_name="predict")
def main(cfg: DictConfig) -> dict:
    with sigterm_stops():  # SIGTERM stops as Ctrl-C does (partial results kept), exit status 143
        return run_task(cfg)


if __name__ == "__main__":
    main()
