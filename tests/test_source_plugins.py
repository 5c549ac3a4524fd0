"""The foreground and affinity plug points: ``task.foreground.source`` and ``task.affinities.source``
take ``{_target_: ...}``, also a class defined outside the package, in ``task=segment``,
``task=segment_select`` and the engine's patch skipping (``task=inpaintaff``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from inpaintaff.io import ctc
from inpaintaff.io.results import RESULT_NAME
from inpaintaff.segment.alpha import ALPHA_FILE
from inpaintaff.segment.settings import AffinitySpec
from inpaintaff.segment.sources import (
    AffinityFiles,
    FrameData,
    IntensityForeground,
    build_affinities,
    build_foreground,
    frame_affinities,
    frame_foreground,
)
from inpaintaff.tasks import run_task
from inpaintaff.tasks.inpaintaff.patches import foreground_skip_spec
from tests.conftest import run_with_outside_plugin
from tests.test_segment_task import _write_affinity_dir

PROJECT = Path(__file__).resolve().parents[1]
SYNTH = "SYNTH-HeLa"
HERE = "tests.test_source_plugins"


class ErodedTrueForeground:
    """TRUEFG eroded by ``iterations`` px: a foreground source of the test's own."""

    def __init__(self, iterations: int = 2):
        self.iterations = iterations

    def __call__(self, frame: FrameData) -> np.ndarray:
        return ndimage.binary_erosion(frame.labels > 0, iterations=self.iterations)


class WrongShape:
    def __call__(self, frame: FrameData) -> np.ndarray:
        return np.ones((3, 3), dtype=bool)


class NotAffinities:
    def __call__(self, frame: FrameData) -> np.ndarray:
        return np.ones(frame.shape)


def _frame() -> FrameData:
    labels = np.zeros((32, 32), dtype=np.int32)
    labels[4:14, 4:14], labels[14:24, 8:20] = 1, 2
    image = (labels > 0) * 0.8 + 0.1
    return FrameData(SYNTH, "02", 0, (32, 32), labels=labels, image=image)


def test_a_target_builds_the_same_foreground_as_its_name() -> None:
    frame = _frame()
    by_name = frame_foreground(build_foreground("intensity", threshold=0.3), frame)
    by_target = frame_foreground(build_foreground(
        {"_target_": "inpaintaff.segment.sources.IntensityForeground", "threshold": 0.3}), frame)
    np.testing.assert_array_equal(by_name, by_target)
    assert by_name.sum() == (frame.labels > 0).sum()
    assert isinstance(build_foreground({"_target_": f"{HERE}.ErodedTrueForeground"}), ErodedTrueForeground)
    assert build_foreground("dir", dir="x", threshold=0.2) == build_foreground(
        {"_target_": "inpaintaff.segment.sources.ProbabilityForeground", "dir": "x", "threshold": 0.2})
    assert isinstance(build_foreground("intensity"), IntensityForeground)


def test_bad_targets_and_answers_are_clear_errors() -> None:
    frame = _frame()
    with pytest.raises(ValueError, match="task.foreground.source: a mapping needs _target_"):
        build_foreground({"_target_": None, "threshold": 0.5})
    with pytest.raises(ValueError, match="cannot build no_such_module.Foreground"):
        build_foreground({"_target_": "no_such_module.Foreground"})
    with pytest.raises(TypeError, match="ForegroundSource"):
        build_foreground({"_target_": "builtins.dict"})
    with pytest.raises(ValueError, match="must be one of .* or a mapping with _target_, got 'otsu'"):
        build_foreground("otsu")
    with pytest.raises(ValueError, match=r"WrongShape returned shape \(3, 3\).*expected \(32, 32\)"):
        frame_foreground(build_foreground({"_target_": f"{HERE}.WrongShape"}), frame)
    spec = AffinitySpec(source={"_target_": f"{HERE}.NotAffinities"}, noise=0.0, dir=None, pattern=None, kind="auto")
    with pytest.raises(TypeError, match="NotAffinities returned a ndarray"):
        frame_affinities(build_affinities(spec), frame)
    with pytest.raises(ValueError, match="task.affinities.source must be one of"):
        build_affinities(AffinitySpec(source="tiffs", noise=0.0, dir=None, pattern=None, kind="auto"))
    with pytest.raises(ValueError, match="task.foreground.source must be one of"):
        foreground_skip_spec({"source": ["truefg", "otsu"]})


def test_plugged_sources_run_through_segment_and_segment_select(compose, tmp_path, synthetic_root) -> None:
    eroded = "task.foreground.source={_target_: " + HERE + ".ErodedTrueForeground, iterations: 3}"
    base = ["task=segment", "task.split=val", "task.overlays=false"]
    plain = run_task(compose("predict", base))
    res = run_task(compose("predict", [*base, eroded, "task.res_root=" + str(tmp_path / "res_eroded")]))
    assert res["label"] == "GT-AFF + ERODEDTRUEFOREGROUND"
    for ours, theirs in zip(res["frames"], plain["frames"]):
        gt = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", ours["frame"]))
        inside = ndimage.binary_erosion(gt > 0, iterations=3)
        mask = ctc.read_labels(ours["mask"]) > 0
        assert mask.any() and not (mask & ~inside).any()  # the class's foreground was used, not TRUEFG
        assert (ctc.read_labels(theirs["mask"]) > 0).sum() > mask.sum()
    assert res["seg"] < plain["seg"]  # eroded outlines match the GT worse
    # An affinity source of one's own, and α chosen for a plugged-in foreground, stored under its name.
    aff_dir = tmp_path / "aff"
    _write_affinity_dir(aff_dir, synthetic_root, [0, 1, 2, 3, 4, 5])
    files = "task.affinities.source={_target_: inpaintaff.segment.sources.AffinityFiles, dir: " + str(aff_dir) + "}"
    sel = run_task(compose("predict", ["task=segment_select", "task.overlays=false", files, "task.alphas=[0.3,0.8]",
                                       "task.min_sizes=[0]", eroded]))
    assert sel["label"].startswith("AFFINITYFILES + ERODEDTRUEFOREGROUND")
    by_dir = run_task(compose("predict", ["task=segment_select", "task.overlays=false", "task.affinities.source=dir",
                                          f"task.affinities.dir={aff_dir}", "task.alphas=[0.3,0.8]",
                                          "task.min_sizes=[0]", eroded]))
    assert by_dir["seg"] == sel["seg"] > 0  # the same files, read by the built-in name and by _target_
    stored = json.loads((aff_dir / ALPHA_FILE).read_text())
    assert stored["ErodedTrueForeground"]["alpha"] in (0.3, 0.8)
    assert AffinityFiles(str(aff_dir)) == build_affinities(AffinitySpec(
        source="dir", noise=0.0, dir=str(aff_dir), pattern=None, kind="auto"))


def test_plugged_foreground_decides_the_skipped_patches(compose, tmp_path) -> None:
    """task=inpaintaff skips patches without the plugged-in foreground, as it does with TRUEFG."""
    from inpaintaff.tasks.inpaintaff import run

    quick = ["task=inpaintaff", "task.inpainter=gaussian", "task.patch_size=32", "task.stride=16",
             "task.engine.iterations=4", "task.engine.max_depth=2", "trainer=cpu", "trainer.enable_progress_bar=false",
             "task.pictures=false"]
    by_name = run(compose("predict", [*quick, "task.foreground.source=truefg", f"task.out_dir={tmp_path}/a"]))
    by_target = run(compose("predict", [
        *quick, "task.foreground.source={_target_: " + HERE + ".ErodedTrueForeground, iterations: 12}",
        f"task.out_dir={tmp_path}/b"]))
    assert 0 < by_target["totals"]["patches"] < by_name["totals"]["patches"]


OUTSIDE_CLASS = '''
import numpy as np
from scipy import ndimage


class ErodedTruth:
    """TRUEFG eroded by ``iterations`` px."""

    def __init__(self, iterations: int = 1):
        self.iterations = iterations

    def __call__(self, frame):
        return ndimage.binary_erosion(frame.labels > 0, iterations=self.iterations)
'''
OUTSIDE_YAML = '''
# @package _global_
task:
  foreground:
    source:
      _target_: my_sources.ErodedTruth
      iterations: 3
'''


@pytest.mark.slow
def test_a_foreground_defined_outside_the_package_runs_through_task_segment(tmp_path, data_dir) -> None:
    proc = run_with_outside_plugin(tmp_path, "my_sources", OUTSIDE_CLASS, "eroded", OUTSIDE_YAML, [
        f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}", "task=segment", "experiment=eroded",
        "task.split=val", "task.overlays=false", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run" / RESULT_NAME).read_text())
    assert result["label"] == "GT-AFF + ERODEDTRUTH" and result["config"]["foreground"]["source"]["iterations"] == 3
    for row in result["frames"]:
        gt = ctc.read_labels(ctc.gt_seg_path(Path(data_dir) / "synthetic", SYNTH, "02", row["frame"]))
        mask = ctc.read_labels(row["mask"]) > 0
        assert mask.any() and not (mask & ~ndimage.binary_erosion(gt > 0, iterations=3)).any()
