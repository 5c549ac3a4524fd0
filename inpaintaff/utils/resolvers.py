"""OmegaConf resolvers used by the configs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PROJECT_DIR = Path(__file__).resolve().parents[2]


def register_resolvers() -> None:
    """``${project_dir:}``: the folder holding the inpaintaff package (the repository root)."""
    if not OmegaConf.has_resolver("project_dir"):
        OmegaConf.register_new_resolver("project_dir", lambda: str(PROJECT_DIR))
