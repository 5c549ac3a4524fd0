"""Two CPU processes (DDP, gloo, spawned) write the same affinities as one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata
from inpaintaff.tasks.inpaintaff import run

SETTINGS = [
    "task=inpaintaff", "task.inpainter=gaussian", "task.crop=[90,40,48,96]", "task.patch_size=32",
    "task.stride=16", "task.batch_size=2", "task.engine.iterations=6", "task.engine.d0=4",
    "task.engine.min_region=30", "task.engine.max_depth=3", "trainer=cpu", "logger=csv",
    "trainer.enable_progress_bar=false", "task.pictures=false", "task.save_every_n_batches=1",
]


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(compose, tmp_path: Path) -> None:
    one = compose("predict", [*SETTINGS, f"task.out_dir={tmp_path / 'one'}"])
    two = compose("predict", [*SETTINGS, f"task.out_dir={tmp_path / 'two'}", "trainer.devices=2",
                              "trainer.strategy=ddp_spawn"])
    run(one)
    result = run(two)
    a1, v1, _ = read_affinities(aff_path(tmp_path / "one", "SYNTH-HeLa", "02", 0))
    a2, v2, _ = read_affinities(aff_path(tmp_path / "two", "SYNTH-HeLa", "02", 0))
    assert v1.any()
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(a1, a2)
    # Both ranks did work: the merged counters cover every patch exactly once.
    meta = read_affinity_metadata(aff_path(tmp_path / "two", "SYNTH-HeLa", "02", 0))
    assert meta["stats"]["patches"] == meta["n_patches"] == 2 * 5
    assert result["totals"]["patches"] == 10
