"""``task=selfsup``: the self-supervised recipe on a plain folder, end to end on tiny synthetic images
(no stage before the choice of α reads a mask; teacher files named like the images; every stage
resumes), and its parts: training at one nucleus size, the engine's window, the teacher images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import inpaintaff.io.folder as folder_io
import inpaintaff.modules.pretrained as pretrained
from inpaintaff.data.folder import FolderDataModule
from inpaintaff.data.synthetic import synthetic_frame
from inpaintaff.io.affinities import aff_path, read_affinity_metadata
from inpaintaff.tasks import run_task, selfsup
from inpaintaff.tasks.inpaintaff.patches import PatchDataModule
from tests.conftest import write_nucleus_folder

TINY = [
    "task.engine.images=2", "task.engine.task.window=96", "task.engine.task.stride=32",
    "task.engine.task.pictures=false",
    'task.student.overrides=["model=distill_cpu","trainer=cpu","trainer.max_epochs=-1","trainer.max_steps=4",'
    '"trainer.limit_val_batches=0","callbacks.model_checkpoint.every_n_train_steps=2"]',
    "task.student.data.crop_size=64", "task.student.data.samples_per_epoch=8", "task.student.data.batch_size=2",
    "task.select.alphas=[1.0,3.0]", "task.select.min_sizes=[0]", "task.select.foregrounds=[truefg]",
    "task.foreground.enabled=false", "task.tune.enabled=false",
]
TINY_FGNET = [
    "task.foreground.enabled=true", "data.splits.train=[cell_0,cell_1]",
    'task.foreground.overrides=["model=fgnet_cpu","trainer=cpu","trainer.max_epochs=-1","trainer.max_steps=4",'
    '"trainer.limit_val_batches=0","callbacks.model_checkpoint.every_n_train_steps=2","model.boundary_weight=4"]',
    "task.foreground.data.crop_size=64", "task.foreground.data.samples_per_epoch=8",
    "task.foreground.data.batch_size=2",
    "task.select.foregrounds=[fgnet]", "task.select.thresholds=[0.3,0.5]",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 96 × 96 images of crowded nuclei of about 12 px across (half the recipe's 25 px), masks."""
    return write_nucleus_folder(tmp_path_factory.mktemp("own_images"), [f"cell_{i}" for i in range(5)], seed=30,
                                radius=6.0, density=0.4)


def _cfg(compose, root: Path, *extra: str, masks: bool = True):
    over = ["experiment=selfsup", "data=folder", f"data.images={root / 'images'}",
            "data.splits.raw=[cell_0,cell_1,cell_2]", "data.splits.val=[cell_3,cell_4]", *TINY, *extra]
    if masks:
        over.append(f"data.masks={root / 'masks'}")
    return compose("predict", over)


@pytest.mark.slow
def test_recipe_runs_without_reading_masks_before_alpha_and_resumes(compose, folder: Path, monkeypatch) -> None:
    cfg = _cfg(compose, folder)
    out = Path(cfg.task.out_dir)
    reads: list[str] = []
    real_read_mask = folder_io.read_mask
    stage = {"alpha": False}

    def guarded_read_mask(path, shape):
        reads.append(Path(path).name)
        if not stage["alpha"]:
            raise AssertionError(f"a mask was read before the choice of alpha: {path}")
        return real_read_mask(path, shape)

    real_select = selfsup.select_stage

    def select_stage(*args, **kwargs):
        stage["alpha"] = True
        return real_select(*args, **kwargs)

    monkeypatch.setattr(folder_io, "read_mask", guarded_read_mask)
    monkeypatch.setattr("inpaintaff.data.folder.read_mask", guarded_read_mask)
    monkeypatch.setattr(selfsup, "select_stage", select_stage)
    result = run_task(cfg)

    # Stage 2: two teacher images, files named like them, at the recipe's nucleus size.
    assert len(result["teacher_images"]) == 2 and set(result["teacher_images"]) <= {"cell_0", "cell_1", "cell_2"}
    for name in result["teacher_images"]:
        meta = read_affinity_metadata(aff_path(out / "teacher" / "affinities", "images", "", 0, name))
        assert meta["scale"]["model_diameter"] == 25.0 and meta["scale_factor"] > 1.5  # 12 px nuclei doubled
        assert meta["inpainter"] == "gaussian"
    # Stage 3-4: the student records the nucleus size it learned; alpha chosen on the masked val images.
    ckpt = torch.load(result["student"], map_location="cpu", weights_only=True)
    assert ckpt["inpaintaff"]["nucleus_diameter"] == 25.0 and "optimizer_states" not in ckpt
    alpha = json.loads((out / "student.alpha.json").read_text())
    assert alpha["truefg"]["chosen_on"] == "val" and alpha["truefg"]["alpha"] in (1.0, 3.0)
    assert sorted(set(reads)) == ["cell_3.tif", "cell_4.tif"]  # only the selection images' masks

    # A rerun trains nothing and runs the engine on nothing.
    def no_training(*a, **k):
        raise AssertionError("trained again")

    shipped = Path(result["student"]).read_bytes()
    monkeypatch.setattr("inpaintaff.train.train", no_training)
    monkeypatch.setattr(PatchDataModule, "predict_dataloader", no_training)
    monkeypatch.setattr("inpaintaff.tasks.segment_folder.run", no_training)  # alpha read back too
    again = run_task(cfg)
    assert again["student_train"]["checkpoint"] == result["student_train"]["checkpoint"]
    assert again["teacher_images"] == result["teacher_images"]
    assert again["alpha"] == result["alpha"] and Path(again["student"]).read_bytes() == shipped


def test_without_masks_the_defaults_are_stored_and_the_log_says_so(compose, folder: Path, caplog) -> None:
    cfg = _cfg(compose, folder, "task.select.foregrounds=[truefg,fgnet]", masks=False)
    result = run_task(cfg)
    stored = json.loads(Path(result["alpha"]["alpha_file"]).read_text())
    assert set(stored) == {"truefg", "fgnet"}
    assert all(e["chosen_on"] == "default (no masks)" and e["alpha"] == cfg.task.select.default.alpha
               for e in stored.values())
    assert "ships with the default alpha" in caplog.text


@pytest.mark.slow
def test_net_teacher_trains_the_inpainting_net_first(compose, folder: Path) -> None:
    cfg = _cfg(compose, folder, "task.teacher=net", "task.engine.images=1",
               'task.inpaint.overrides=["model=inpaint_cpu","trainer=cpu","trainer.max_epochs=-1",'
               '"trainer.max_steps=2","trainer.limit_val_batches=0"]',
               "task.inpaint.data.crop_size=64", "task.inpaint.data.samples_per_epoch=4",
               "task.inpaint.data.batch_size=2")
    result = run_task(cfg)
    assert Path(result["inpaint_ckpt"]).is_file() and "inpaint" in result["seconds"]
    name = result["teacher_images"][0]
    meta = read_affinity_metadata(aff_path(Path(cfg.task.out_dir) / "teacher" / "affinities", "images", "", 0, name))
    assert meta["inpainter"] == "net" and meta["scale"]["model_diameter"] == 25.0


def test_training_frames_are_resized_to_one_nucleus_size(folder: Path) -> None:
    dm = FolderDataModule(folder / "images", resize_to=25.0, diameter=12.5, splits={"raw": ["cell_0"]}, crop_size=64)
    ref = dm.frames("raw")[0]
    assert dm.training_frames().load_image(ref).shape == (192, 192)  # nuclei of 12.5 px brought to 25
    assert FolderDataModule(folder / "images").training_frames().load_image(ref).shape == (96, 96)
    with pytest.raises(ValueError, match="resize_to"):
        FolderDataModule(folder / "images", resize_to=0)


def test_engine_window_is_the_centred_part_of_large_frames() -> None:
    pdm = PatchDataModule(data=None, patch_size=64, stride=16, window=128)  # type: ignore[arg-type]
    assert pdm.frame_crop((400, 100)) == [136, 0, 128, 100]
    assert pdm.frame_crop((100, 100)) == [0, 0, 100, 100]
    with pytest.raises(ValueError, match="window"):
        PatchDataModule(data=None, patch_size=64, window=32)  # type: ignore[arg-type]


def test_teacher_images_leave_out_images_of_unknown_size(folder: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(("a", "b")):
        tifffile.imwrite(images / f"{name}.tif", synthetic_frame((128, 128), seed=i, radius=10.0, density=0.25)[0])
    # Packed nuclei whose size the intensity foreground cannot tell (the estimate explains too little).
    tifffile.imwrite(images / "packed.tif", tifffile.imread(folder / "images" / "cell_0.tif"))
    dm = FolderDataModule(images)
    chosen = selfsup.teacher_images(dm, dm.frames("raw"), None, 25.0, seed=0)
    assert chosen == ["a", "b"]
    assert len(selfsup.teacher_images(dm, dm.frames("raw"), 1, 25.0, seed=0)) == 1


def test_presets_compose(compose) -> None:
    cpu = compose("predict", ["experiment=selfsup", "data=folder", "data.images=/nowhere"])
    gpu = compose("predict", ["experiment=selfsup_gpu", "data=folder", "data.images=/nowhere"])
    dsb = compose("predict", ["experiment=dsb_selfsup"])
    assert cpu.task.teacher == "analytic" and cpu.trainer.accelerator == "cpu"
    assert gpu.task.teacher == "net" and gpu.trainer.accelerator == "gpu"
    assert any(o == "trainer=gpu" for o in gpu.task.inpaint.overrides + gpu.task.student.overrides)
    assert dsb.data.dataset == "dsb2018" and dsb.task.select.fgnet_ckpt.endswith("dsb_fgnet_cpu.ckpt")
    assert dsb.task.engine == cpu.task.engine and dsb.task.student == cpu.task.student  # the CPU preset's stages


def test_the_shipped_dsb_student_segments_and_the_command_takes_it(tmp_path: Path) -> None:
    from inpaintaff import Segmenter
    from inpaintaff.api import PRETRAINED
    from inpaintaff.cli import model_overrides
    from inpaintaff.segment.alpha import checkpoint_alpha_file

    student = PRETRAINED["dsb"]["affinities"]
    stored = json.loads(checkpoint_alpha_file(student).read_text())
    assert {stored[k]["chosen_on"] for k in ("truefg", "fgnet")} == {"val"}  # on the DSB val masks
    seg = Segmenter.pretrained("dsb")
    assert seg.model_diameter == 25.0
    raw, labels = synthetic_frame((128, 128), seed=3, radius=12.0, density=0.35)
    pred = seg(raw.astype(np.float32), diameter=24.0)
    assert pred.shape == raw.shape and 0.5 * labels.max() < len(np.unique(pred)) - 1 < 2 * labels.max()
    assert f"task.affinities_ckpt={student}" in model_overrides("dsb")
    assert model_overrides(str(tmp_path / "mine.ckpt")) == [f"task.affinities_ckpt={tmp_path / 'mine.ckpt'}"]
    with pytest.raises(SystemExit, match="neither a shipped model"):
        model_overrides("cellpose")


def test_teacher_images_leave_out_windows_without_foreground(tmp_path: Path) -> None:
    from inpaintaff.utils.errors import InputError

    images = tmp_path / "images"
    images.mkdir()
    tifffile.imwrite(images / "a.tif", synthetic_frame((128, 128), seed=0, radius=10.0, density=0.25)[0])
    dm = FolderDataModule(images)
    assert selfsup.teacher_images(dm, dm.frames("raw"), None, 25.0, 0, window=96, threshold=0.1) == ["a"]
    with pytest.raises(InputError, match="1 without a pixel above"):  # nothing above the threshold: no patch anywhere
        selfsup.teacher_images(dm, dm.frames("raw"), None, 25.0, 0, window=96, threshold=10.0)


@pytest.mark.slow
def test_alpha_is_chosen_again_when_a_selection_mask_changes(compose, folder: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(folder, root)
    cfg = _cfg(compose, root)
    run_task(cfg)
    mask = root / "masks" / "cell_3.tif"
    labels = tifffile.imread(mask)
    labels[labels == labels.max()] = 0  # one nucleus unlabeled
    tifffile.imwrite(mask, labels)

    class ChosenAgain(Exception):
        pass

    def chosen_again(*a, **k):
        raise ChosenAgain

    monkeypatch.setattr("inpaintaff.tasks.segment_folder.run", chosen_again)
    with pytest.raises(ChosenAgain):
        run_task(cfg)


@pytest.mark.slow
def test_fgnet_is_trained_from_the_student_on_the_few_masks_and_ships_beside_it(compose, folder: Path,
                                                                               monkeypatch) -> None:
    """Stage 4: FGNET starts from the shipped student, learns from the masks of the train images only,
    ships as student.fgnet.ckpt, the fgnet α entry (with its threshold) is chosen with it, and the
    folder command takes both with --model student.ckpt."""
    from inpaintaff.cli import model_overrides
    from inpaintaff.io.records import content_sha1
    from inpaintaff.tasks.checkpoints import checkpoint_meta

    cfg = _cfg(compose, folder, *TINY_FGNET)
    out = Path(cfg.task.out_dir)
    reads: list[str] = []
    real_read_mask = folder_io.read_mask

    def counted_read_mask(path, shape):
        reads.append(Path(path).stem)
        return real_read_mask(path, shape)

    monkeypatch.setattr("inpaintaff.data.folder.read_mask", counted_read_mask)
    started_from: list[str] = []
    real_load = pretrained.load_matching_weights

    def recorded_load(module, path):
        started_from.append(str(path))
        return real_load(module, path)

    monkeypatch.setattr(pretrained, "load_matching_weights", recorded_load)
    result = run_task(cfg)
    student, fgnet = Path(result["student"]), Path(result["fgnet"])
    assert fgnet == out / "student.fgnet.ckpt" and fgnet.is_file()
    assert started_from == [result["base_student"]] and not result["tuned"]
    assert student.read_bytes() == Path(result["base_student"]).read_bytes()  # not tuned: the student itself
    record = checkpoint_meta(out / "fgnet" / "checkpoints" / "last.ckpt")["record"]
    assert record["checkpoints"]["init_from"] == content_sha1(student)
    assert set(reads) == {"cell_0", "cell_1", "cell_3", "cell_4"}  # train masks (FGNET), val masks (alpha)
    entry = json.loads((out / "student.alpha.json").read_text())["fgnet"]
    assert entry["threshold"] in (0.3, 0.5) and entry["chosen_on"] == "val"
    assert f"task.foreground.ckpt={fgnet.resolve()}" in model_overrides(str(student))


@pytest.mark.slow
def test_the_tuned_student_learns_from_fgnets_masks_and_is_shipped(compose, folder: Path, monkeypatch) -> None:
    """Stage 4b: with masks, the student fine-tuned on the nuclei FGNET learns from (the same budget),
    started from the student as trained; it is shipped, α is chosen for it, and a rerun trains nothing."""
    from inpaintaff.io.records import content_sha1
    from inpaintaff.modules.loading import checkpoint_diameter, checkpoint_kind
    from inpaintaff.tasks.checkpoints import checkpoint_meta

    tiny_tune = ['task.tune.overrides=["model=affnet_cpu","trainer=cpu","trainer.max_epochs=-1",'
                 '"trainer.max_steps=4","trainer.limit_val_batches=0","callbacks.model_checkpoint.every_n_train_steps=2"]',
                 "task.tune.data.crop_size=64", "task.tune.data.samples_per_epoch=8", "task.tune.data.batch_size=2"]
    cfg = _cfg(compose, folder, *TINY_FGNET, "task.tune.enabled=true", "task.foreground.data.max_instances=6",
               *tiny_tune)
    cfg.task.out_dir = str(Path(cfg.task.out_dir).parent / "selfsup_tuned")
    out = Path(cfg.task.out_dir)
    result = run_task(cfg)
    base, student = Path(result["base_student"]), Path(result["student"])
    assert result["tuned"] and base == out / "student" / "student.ckpt" and student == out / "student.ckpt"
    assert result["tune_train"]["n_train_instances"] == json.loads(
        (out / "fgnet" / "train_result.json").read_text())["n_train_instances"] <= 2 * 6  # one budget
    assert checkpoint_kind(student) == "AffNetModule" and checkpoint_kind(base) == "DistillModule"
    assert checkpoint_diameter(student) == 25.0  # the folder command resizes to the size it learned
    for net in ("fgnet", "tune"):
        record = checkpoint_meta(out / net / "checkpoints" / "last.ckpt")["record"]
        assert record["checkpoints"]["init_from"] == content_sha1(base)
    select = json.loads((out / selfsup.SELECT_RECORD).read_text())["record"]
    assert json.dumps(content_sha1(student)) in json.dumps(select)  # α chosen for the tuned student

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("inpaintaff.train.train", no_training)
    monkeypatch.setattr("inpaintaff.tasks.segment_folder.run", no_training)
    again = run_task(cfg)
    assert again["student"] == result["student"] and again["alpha"] == result["alpha"]


def test_a_student_shipped_by_an_earlier_version_is_taken_over_byte_for_byte(tmp_path: Path) -> None:
    """Earlier recipes shipped the student itself as ``student.ckpt`` and started FGNET from it: its bytes
    (and so every record naming it) are kept as ``student/student.ckpt``; otherwise it is slimmed anew."""
    from types import SimpleNamespace

    from inpaintaff.io.records import content_sha1

    trained = tmp_path / "student" / "checkpoints" / "last.ckpt"
    trained.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(3)}, "optimizer_states": [{}]}, trained)
    t = SimpleNamespace(ship=str(tmp_path / "student.ckpt"))
    earlier = selfsup.ship_checkpoint(str(trained), Path(t.ship), tmp_path)  # what an earlier run left
    base = selfsup.base_student(str(trained), t, tmp_path)
    assert base == tmp_path / "student" / "student.ckpt" and base.read_bytes() == earlier.read_bytes()
    assert content_sha1(base) == content_sha1(earlier)
    other = tmp_path / "other"
    other.mkdir()
    (other / "student").mkdir()
    fresh = selfsup.base_student(str(trained), SimpleNamespace(ship=str(other / "student.ckpt")), other)
    assert fresh.is_file() and "optimizer_states" not in torch.load(fresh, weights_only=True)


def test_the_shipped_tuned_hela_student_reads_its_own_alpha() -> None:
    """``hela_tuned`` segments with the α, fragment size and threshold measured for it, not the student's."""
    from inpaintaff import Segmenter
    from inpaintaff.api import PRETRAINED, stored_alpha
    from inpaintaff.cli import model_overrides

    tuned, student = PRETRAINED["hela_tuned"]["affinities"], PRETRAINED["hela"]["affinities"]
    assert PRETRAINED["hela_tuned"]["foreground"] == PRETRAINED["hela"]["foreground"]
    assert stored_alpha(tuned, "fgnet") != stored_alpha(student, "fgnet")
    seg = Segmenter.pretrained("hela_tuned")
    raw, labels = synthetic_frame((128, 128), seed=3, radius=12.0, density=0.35)
    pred = seg(raw.astype(np.float32), diameter=24.0)
    assert pred.shape == raw.shape and 0.5 * labels.max() < len(np.unique(pred)) - 1 < 2 * labels.max()
    assert f"task.affinities_ckpt={tuned}" in model_overrides("hela_tuned")


@pytest.mark.slow
def test_the_recipe_runs_on_the_planes_of_a_time_lapse_file(compose, tmp_path: Path) -> None:
    """One ImageJ time-lapse (axes TYX) of five planes and its stack of label planes: the planes are
    the recipe's images, by name (teacher, student, α on the val planes' masks)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    planes = [synthetic_frame((96, 96), seed=30 + i, radius=6.0, density=0.4) for i in range(5)]
    tifffile.imwrite(tmp_path / "images" / "movie.tif", np.stack([raw for raw, _ in planes]), imagej=True,
                     metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "masks" / "movie.tif", np.stack([lab for _, lab in planes]).astype(np.uint16))
    cfg = compose("predict", [
        "experiment=selfsup", "data=folder", f"data.images={tmp_path / 'images'}", f"data.masks={tmp_path / 'masks'}",
        "data.splits.raw=[movie/p0000,movie/p0001,movie/p0002]", "data.splits.val=[movie/p0003,movie/p0004]", *TINY])
    result = run_task(cfg)
    out = Path(cfg.task.out_dir)
    assert len(result["teacher_images"]) == 2
    assert set(result["teacher_images"]) <= {"movie/p0000", "movie/p0001", "movie/p0002"}
    for name in result["teacher_images"]:
        assert aff_path(out / "teacher" / "affinities", "images", "", 0, name).is_file()
    alpha = json.loads((out / "student.alpha.json").read_text())
    assert alpha["truefg"]["chosen_on"] == "val" and alpha["truefg"]["alpha"] in (1.0, 3.0)
