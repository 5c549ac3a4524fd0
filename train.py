"""Train a LightningModule from the Hydra config: `python train.py model=inpaint data=shared_hela`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from inpaintaff.train import train


@hydra.main(version_base="1.3", config_path="inpaintaff/conf", config_name="train")
def main(cfg: DictConfig) -> dict:
    return train(cfg)


if __name__ == "__main__":
    main()
