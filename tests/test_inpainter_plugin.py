"""The inpainter plug point: ``task.inpainter: {_target_: ...}`` builds any class, also one defined
outside the package, and the engine runs it through ``task=inpaintaff``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata
from inpaintaff.tasks.inpaintaff import build_inpainter, run
from tests.conftest import run_with_outside_plugin

PROJECT = Path(__file__).resolve().parents[1]
QUICK = [
    "task=inpaintaff", "task.crop=[100,60,48,80]", "task.patch_size=32", "task.stride=16", "task.batch_size=4",
    "task.engine.iterations=6", "task.engine.d0=4", "task.engine.min_region=30", "task.engine.max_depth=3",
    "trainer=cpu", "trainer.enable_progress_bar=false", "task.pictures=false",
]

# A newcomer's inpainter: one class in their own module ...
OUTSIDE_CLASS = '''
import torch
from torch import nn


class MeanInpainter(nn.Module):
    """Every hidden pixel gets the mean of the known pixels of its patch, times ``gain``."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = gain
        self.calls = 0

    def forward(self, image, known):
        mean = (image * known).sum(dim=(-1, -2), keepdim=True) / known.sum(dim=(-1, -2), keepdim=True).clamp_min(1)
        return torch.where(known > 0, image, mean * self.gain)
'''
# ... and one YAML file, an experiment in their own config folder.
OUTSIDE_YAML = '''
# @package _global_
task:
  inpainter:
    _target_: my_inpainters.MeanInpainter
    gain: 1.0
'''


def _affinities(cfg) -> tuple[np.ndarray, np.ndarray]:
    aff, valid, _ = read_affinities(aff_path(Path(cfg.task.out_dir), "SYNTH-HeLa", "02", 0))
    return aff, valid


def test_target_builds_the_same_inpainter_as_its_name(compose, tmp_path) -> None:
    by_name = compose("predict", [*QUICK, "task.inpainter=gaussian", f"task.out_dir={tmp_path}/a"])
    run(by_name)
    by_target = compose("predict", [
        *QUICK, "task.inpainter={_target_: inpaintaff.igm.inpainters.GaussianInpainter, sigma: 4.0}",
        f"task.out_dir={tmp_path}/b"])
    run(by_target)
    for a, b in zip(_affinities(by_name), _affinities(by_target)):
        np.testing.assert_array_equal(a, b)
    meta = read_affinity_metadata(aff_path(Path(by_target.task.out_dir), "SYNTH-HeLa", "02", 0))
    assert "inpaintaff.igm.inpainters.GaussianInpainter" in json.dumps(meta)  # recorded for resuming


def test_a_target_that_is_not_an_inpainter_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs _target_"):
        build_inpainter({"sigma": 4.0}, None, 4.0)
    with pytest.raises(ValueError, match="cannot build no_such_module.Inpainter"):
        build_inpainter({"_target_": "no_such_module.Inpainter"}, None, 4.0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        build_inpainter({"_target_": "builtins.dict"}, None, 4.0)
    _, desc = build_inpainter({"_target_": "inpaintaff.igm.inpainters.GaussianInpainter", "sigma": 2.0,
                               "eps": 1e-8}, None, 4.0)
    assert desc == {"inpainter": "inpaintaff.igm.inpainters.GaussianInpainter",
                    "inpainter_params": {"sigma": 2.0, "eps": 1e-8}}


@pytest.mark.slow
def test_an_inpainter_defined_outside_the_package_runs_through_task_inpaintaff(tmp_path, data_dir) -> None:
    out = tmp_path / "aff"

    def predict(*extra: str) -> None:
        proc = run_with_outside_plugin(tmp_path, "my_inpainters", OUTSIDE_CLASS, "mean_inpainter", OUTSIDE_YAML, [
            f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", *QUICK, *extra])
        assert proc.returncode == 0, proc.stderr[-3000:]

    predict("experiment=mean_inpainter", f"task.out_dir={out}", f"hydra.run.dir={tmp_path}/run")
    aff, valid, _ = read_affinities(aff_path(out, "SYNTH-HeLa", "02", 0))
    assert valid.any() and 0 <= aff[valid].min() and aff[valid].max() <= 1
    assert 0 < aff[valid].mean() < 1  # the engine split with it: some pairs joined, some cut
    # A different inpainter gives different affinities: the class was used, not a built-in one.
    predict("task.inpainter=gaussian", f"task.out_dir={tmp_path}/gauss", f"hydra.run.dir={tmp_path}/run_gauss")
    other, _, _ = read_affinities(aff_path(tmp_path / "gauss", "SYNTH-HeLa", "02", 0))
    assert not np.array_equal(aff, other)
