"""Train a LightningModule from the Hydra config: `python train.py model=inpaint data=shared_hela`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import inpaintaff.utils.threads  # noqa: F401  (first: torch's idle threads sleep, see the module)
from inpaintaff.train import train
from inpaintaff.utils.signals import sigterm_stops


@hydra.main(version_base="1.3", config_path="inpaintaff/conf", config_name="train")
def main(cfg: DictConfig) -> dict:
    # SIGTERM stops as Ctrl-C does: checkpoints/interrupted.ckpt is saved (resume with ckpt_path=), status 143.
    with sigterm_stops("resume with ckpt_path=<the interrupted.ckpt named above>"):
        return train(cfg)


if __name__ == "__main__":
    main()
