"""Inference and evaluation tasks: `python predict.py task=inpaintaff|segment|report ...`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from inpaintaff.tasks import run_task


@hydra.main(version_base="1.3", config_path="inpaintaff/conf", config_name="predict")
def main(cfg: DictConfig) -> dict:
    return run_task(cfg)


if __name__ == "__main__":
    main()
