"""``task=folder_table`` on a tiny folder of touching synthetic nuclei with the shipped HeLa student:
the table, the choice of α, resume by record, and the errors a user meets; ``experiment=dsb_table``
composes with disjoint splits covering the DSB folder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from inpaintaff.segment.one_pass import OnePassSegmenter
from inpaintaff.tasks import run_task
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import touching_ids
from inpaintaff.utils.resolvers import CHECKPOINT_DIR
from tests.conftest import write_nucleus_folder

from .conftest import SHARED_DATA

STUDENT = CHECKPOINT_DIR / "hela_distill_cpu.ckpt"
ALPHAS = [0.5, 1.5, 5.0]
DSB = SHARED_DATA / "dsb2018" / "images"
CC_ROW = '{label: "CC on TRUEFG", method: cc, foreground: truefg}'
MWS_ROW = f'{{label: "DISTILL + TRUEFG", method: mws, affinities: "{STUDENT}", foreground: truefg}}'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 96 × 96 images of crowded HeLa-sized nuclei (many touching) with their masks."""
    root = write_nucleus_folder(tmp_path_factory.mktemp("crowded"), [f"im{i}" for i in range(4)], seed=10,
                                radius=12.0, density=0.5)
    for mask in (root / "masks").glob("*.tif"):
        assert touching_ids(tifffile.imread(mask)).size >= 5
    return root


def _cfg(compose, root: Path, rows: list[str], *extra: str):
    return compose("predict", [
        "task=folder_table", "data=folder", f"data.images={root / 'images'}", f"data.masks={root / 'masks'}",
        "data.splits.val=[im0,im1]", "data.splits.test=[im2,im3]", f"task.alphas={ALPHAS}", "task.min_sizes=[0]",
        "task.figure.n_images=2", f"task.rows=[{','.join(rows)}]", *extra])


@pytest.mark.slow
def test_table_chooses_alpha_beats_cc_and_resumes(compose, folder: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    cfg = _cfg(compose, root, [CC_ROW, MWS_ROW])
    out = Path(cfg.paths.output_dir)
    report = run_task(cfg)
    cc, mws = report["rows"]
    assert [r["label"] for r in report["rows"]] == ["CC on TRUEFG", "DISTILL + TRUEFG"]
    for r in report["rows"]:
        for split in ("val", "test"):
            e = r["splits"][split]
            assert 0.0 <= e["seg"] <= 1.0 and 0.0 <= e["det_acc_0.5"] <= 1.0
            assert e["n_images"] == 2 and e["n_gt"] > 10
    assert mws["alpha"] in ALPHAS and mws["min_size"] == 0 and cc["alpha"] is None
    assert [p["alpha"] for p in mws["splits"]["test"]["curve"]] == ALPHAS
    # Touching nuclei: CC merges them; the mutex watershed splits them.
    assert mws["splits"]["test"]["seg"] > cc["splits"]["test"]["seg"] + 0.1
    assert mws["splits"]["test"]["det_acc_0.5"] > cc["splits"]["test"]["det_acc_0.5"]
    with open(out / "folder_table.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["CC on TRUEFG", "DISTILL + TRUEFG"]
    assert "DISTILL + TRUEFG" in (out / "folder_table.md").read_text()
    for name in ("seg_vs_alpha.png", "comparison.png", "rows/distill_truefg/overlays/im2.png"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir())

    # Rerun: every row is read back, nothing is prepared again.
    def refuse(*args, **kwargs):
        raise AssertionError("prepare called on a rerun with unchanged inputs")

    monkeypatch.setattr(OnePassSegmenter, "prepare", refuse)
    again = run_task(cfg)
    assert [r["splits"] for r in again["rows"]] == [r["splits"] for r in report["rows"]]

    # A changed mask recomputes (and the mws row prepares its images again).
    mask = root / "masks" / "im3.tif"
    tifffile.imwrite(mask, np.ascontiguousarray(tifffile.imread(mask)[::-1]))
    with pytest.raises(AssertionError, match="prepare called"):
        run_task(cfg)
    monkeypatch.undo()
    redone = run_task(cfg)
    assert json.loads((out / "rows/distill_truefg/result.json").read_text())["result"] == redone["rows"][1]


def test_missing_checkpoint_is_an_error_or_skipped(compose, folder: Path) -> None:
    missing = folder / "no_such_student.ckpt"
    row = f'{{label: "GONE", method: mws, affinities: "{missing}", foreground: truefg}}'
    with pytest.raises(InputError, match="no_such_student.ckpt"):
        run_task(_cfg(compose, folder, [CC_ROW, row]))
    report = run_task(_cfg(compose, folder, [CC_ROW, row], "task.skip_missing=true"))
    assert [r["label"] for r in report["rows"]] == ["CC on TRUEFG"]
    assert report["skipped"] == [{"label": "GONE", "missing": [str(missing)]}]


def test_bad_splits_and_rows_are_errors_naming_them(compose, folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="task.select_split='val'.*holds no image"):
        run_task(_cfg(compose, folder, [CC_ROW], "data.splits.val=[]"))
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    (root / "masks" / "im2.tif").unlink()
    with pytest.raises(InputError, match=r"split 'test' have no mask.*im2"):
        run_task(_cfg(compose, root, [CC_ROW]))
    with pytest.raises(ValueError, match="an mws row needs affinities"):
        run_task(_cfg(compose, folder, ['{label: X, method: mws, foreground: truefg}']))
    with pytest.raises(ValueError, match="no_such_key"):
        run_task(_cfg(compose, folder, ['{label: X, method: cc, foreground: truefg, no_such_key: 1}']))


def _dsb_splits(compose) -> dict[str, list[str]]:
    cfg = compose("predict", ["experiment=dsb_table"])
    assert cfg.task.name == "folder_table" and cfg.task.skip_missing is False
    labels = [r.label for r in cfg.task.rows]
    assert labels[0] == "CC on TRUEFG" and len(labels) == 7
    assert cfg.task.rows[2].affinities.endswith("dsb_distill_cpu.ckpt")
    tuned = [r for r in cfg.task.rows if r.get("affinities", "").endswith("dsb_distill_tuned_cpu.ckpt")]
    assert sorted(r.foreground.rsplit("/", 1)[-1] for r in tuned) == ["dsb_fgnet_cpu.ckpt", "truefg"]
    return {k: list(v) for k, v in cfg.data.splits.items() if v is not None}


def test_dsb_experiment_splits_are_disjoint(compose) -> None:
    splits = _dsb_splits(compose)
    assert splits["raw"] == splits["train"]
    train, val, test = (set(splits[k]) for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (379, 54, 108) and len(train | val | test) == 541
    assert not (train & val or train & test or val & test)


def test_dsb_splits_cover_the_shared_folder(compose) -> None:
    if not DSB.is_dir():
        pytest.skip(f"DSB 2018 images not found at {DSB}")
    splits = _dsb_splits(compose)
    stems = {p.stem for p in DSB.glob("*.tif")}
    assert set(splits["train"]) | set(splits["val"]) | set(splits["test"]) == stems


def test_near_best_seg_the_more_accurate_setting_is_chosen() -> None:
    from inpaintaff.segment.selection import best_row

    rows = [{"alpha": 1.0, "min_size": 100, "seg": 0.878, "det_acc_0.5": 0.745},
            {"alpha": 1.5, "min_size": 100, "seg": 0.880, "det_acc_0.5": 0.644},
            {"alpha": 2.0, "min_size": 100, "seg": 0.850, "det_acc_0.5": 0.900}]
    assert best_row(rows, [1.0, 1.5, 2.0])["alpha"] == 1.5  # SEG alone
    assert best_row(rows, [1.0, 1.5, 2.0], seg_tolerance=0.005)["alpha"] == 1.0
    assert best_row(rows, [1.0, 1.5, 2.0], seg_tolerance=0.05)["alpha"] == 2.0
