"""OmegaConf resolvers used by the configs."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = PACKAGE_DIR.parent
# The Hydra configs and the shipped checkpoints are package data: an installed wheel carries them.
CONF_DIR = PACKAGE_DIR / "conf"
CHECKPOINT_DIR = PACKAGE_DIR / "checkpoints"
SHARED_DATA_ENV = "INPAINTAFF_SHARED_DATA"


def shared_data_dir() -> Path:
    """The real data that tests and benchmarks read: ``$INPAINTAFF_SHARED_DATA``, else
    ``../shared/data`` beside the checkout (as the ``shared_hela`` and ``dsb2018`` data configs)."""
    return Path(os.environ.get(SHARED_DATA_ENV, PROJECT_DIR.parent / "shared" / "data"))


def register_resolvers() -> None:
    """``${project_dir:}``: the folder holding the inpaintaff package (the repository root in a
    checkout); ``${package_dir:}``: the package itself (holds ``conf/`` and ``checkpoints/``);
    ``${shared_data:}``: :func:`shared_data_dir`, the one setting of where the real data lies."""
    if not OmegaConf.has_resolver("project_dir"):
        OmegaConf.register_new_resolver("project_dir", lambda: str(PROJECT_DIR))
    if not OmegaConf.has_resolver("package_dir"):
        OmegaConf.register_new_resolver("package_dir", lambda: str(PACKAGE_DIR))
    if not OmegaConf.has_resolver("shared_data"):
        OmegaConf.register_new_resolver("shared_data", lambda: str(shared_data_dir()))
