"""Shared fixtures: the synthetic data set, the shared HeLa data, and the real Hydra config."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

import inpaintaff  # noqa: F401  (registers the config resolvers)
from inpaintaff.data.synthetic import make_synthetic_dataset
from inpaintaff.utils.resolvers import shared_data_dir

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_DIR / "inpaintaff" / "conf"
SHARED_DATA = shared_data_dir()
SYNTH_DATASET = "SYNTH-HeLa"


def run_with_outside_plugin(tmp_path: Path, module: str, code: str, experiment: str, yaml: str,
                            overrides: list[str]) -> subprocess.CompletedProcess:
    """``predict.py`` in a subprocess with a user's own module (``<module>.py`` holding ``code``, on
    PYTHONPATH) and experiment (``experiment=<experiment>``, from their own config folder through
    ``hydra.searchpath``), both in folders outside the package below ``tmp_path``."""
    code_dir, conf = tmp_path / "code", tmp_path / "conf" / "experiment"
    code_dir.mkdir(exist_ok=True)
    conf.mkdir(parents=True, exist_ok=True)
    (code_dir / f"{module}.py").write_text(textwrap.dedent(code))
    (conf / f"{experiment}.yaml").write_text(textwrap.dedent(yaml))
    args = [sys.executable, "predict.py", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *overrides]
    return subprocess.run(args, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(code_dir)})


def write_nucleus_folder(root: Path, names: list[str], seed: int, radius: float, density: float,
                         shape: tuple[int, int] = (96, 96)) -> Path:
    """``root/images/<name>.tif`` of synthetic nuclei (one seed each, from ``seed``) and their masks in
    ``root/masks``: a user's plain folder."""
    import numpy as np
    import tifffile

    from inpaintaff.data.synthetic import synthetic_frame

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, name in enumerate(names):
        raw, labels = synthetic_frame(shape, seed=seed + i, radius=radius, density=density)
        tifffile.imwrite(root / "images" / f"{name}.tif", raw)
        tifffile.imwrite(root / "masks" / f"{name}.tif", labels.astype(np.uint16))
    return root



@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny test nets stall on spin-waiting threads on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide ``paths.data_dir`` holding the generated synthetic data set."""
    root = tmp_path_factory.mktemp("data")
    # Same parameters as conf/data/synthetic.yaml's `generate`.
    make_synthetic_dataset(root / "synthetic", SYNTH_DATASET, n_sequences=2, n_frames=6, shape=(256, 256), seed=0)
    return root


@pytest.fixture(scope="session")
def synthetic_root(data_dir: Path) -> Path:
    """Root of the synthetic CTC data set (dataset folder ``SYNTH-HeLa`` inside)."""
    return data_dir / "synthetic"


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The real HeLa frames in ../shared/data, or a skip saying why."""
    if not (SHARED_DATA / "Fluo-N2DL-HeLa" / "01").is_dir():
        pytest.skip(f"shared HeLa data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def compose(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """Compose the real Hydra config (``train`` or ``predict``) with tiny overrides.

    Runs write below ``tmp_path``; the synthetic data come from the session's ``data_dir``.
    """

    def _compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(
                config_name,
                overrides=[f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", *(overrides or [])],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "out")
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
