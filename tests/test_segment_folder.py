"""The folder command (``inpaintaff segment DIR`` / ``task=segment_folder``) and the Python API on
a plain folder: names kept, the API equal to the command, resume by record, two processes equal
to one, and the errors a user meets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from inpaintaff import Segmenter
from inpaintaff.cli import main as cli_main
from inpaintaff.data.synthetic import synthetic_frame
from inpaintaff.io.folder import read_channel
from inpaintaff.tasks.segment_folder import run_segment_folder
from inpaintaff.utils.errors import InputError

from .conftest import SHARED_DATA

DSB = SHARED_DATA / "dsb2018"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three images of HeLa-sized synthetic nuclei (two sizes, TIFF and PNG) and their masks."""
    root = tmp_path_factory.mktemp("own")
    imgs, masks = root / "images", root / "masks"
    imgs.mkdir()
    masks.mkdir()
    for name, shape, seed in (("plate A1", (96, 128), 1), ("b_02", (80, 80), 2), ("c03", (112, 96), 3)):
        raw, labels = synthetic_frame(shape, seed=seed, radius=12.0, density=0.3)
        if name == "b_02":
            Image.fromarray((raw // 4).astype(np.uint8)).save(imgs / f"{name}.png")
        else:
            tifffile.imwrite(imgs / f"{name}.tif", raw)
        tifffile.imwrite(masks / f"{name}.tif", labels.astype(np.uint16))
    return imgs, masks


def _command(imgs: Path, out: Path, *extra: str) -> int:
    return cli_main(["segment", str(imgs), "--out", str(out), "trainer.enable_progress_bar=false", *extra])


def _masks(out: Path) -> dict[str, np.ndarray]:
    return {p.stem: tifffile.imread(p) for p in sorted((out / "masks").glob("*.tif"))}


def test_command_writes_outputs_named_like_the_inputs(images, tmp_path: Path) -> None:
    imgs, masks = images
    out = tmp_path / "out"
    assert _command(imgs, out, "--masks", str(masks)) == 0
    found = _masks(out)
    assert sorted(found) == ["b_02", "c03", "plate A1"]
    assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == sorted(found)
    result = json.loads((out / "segment_folder_result.json").read_text())
    assert result["n_images"] == 3 and result["seg"] is not None and result["seg"] > 0.5
    rows = {r["image"]: r for r in _csv(out / "images.csv")}
    objects = _csv(out / "objects.csv")
    for name, labels in found.items():
        source = next(imgs.glob(f"{name}.*"))
        raw = read_channel(source)
        assert labels.shape == raw.shape
        assert int(rows[name]["n_objects"]) == labels.max() > 3
        assert float(rows[name]["scale_factor"]) > 0 and rows[name]["diameter_source"] == "estimated"
        mine = [o for o in objects if o["image"] == name]
        assert sum(int(o["area"]) for o in mine) == int((labels > 0).sum())
        one = mine[0]
        assert abs(float(one["mean_intensity"]) - raw[labels == int(one["label"])].mean()) < 1e-3 * raw.max()
        for i, sl in enumerate(ndi.find_objects(labels), start=1):  # holes are filled
            if sl is not None:
                own = labels[sl] == i
                assert not (ndi.binary_fill_holes(own) & (labels[sl] == 0)).any(), f"{name}: object {i} has a hole"


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_default_model_is_the_commands_default(tmp_path: Path) -> None:
    """``Segmenter.pretrained()``, ``inpaintaff segment`` without ``--model`` and ``--model <DEFAULT_MODEL>``
    name the same checkpoints: the task's YAML default is the shipped default model's."""
    from inpaintaff.cli import model_overrides
    from inpaintaff.segmenter import DEFAULT_MODEL, PRETRAINED
    from inpaintaff.tasks.compose import compose

    cfg = compose("predict", ["task=segment_folder", "data=folder", f"data.images={tmp_path}"])
    default = PRETRAINED[DEFAULT_MODEL]
    assert DEFAULT_MODEL == "hela_tuned"  # measured the better default (benchmarks/folder_default.py)
    assert Path(cfg.task.affinities_ckpt).resolve() == default["affinities"].resolve()
    assert Path(cfg.task.foreground.ckpt).resolve() == default["foreground"].resolve()
    assert model_overrides(DEFAULT_MODEL) == [f"task.affinities_ckpt={default['affinities']}",
                                              f"task.foreground.ckpt={default['foreground']}"]
    assert Segmenter.pretrained().checkpoints == Segmenter.pretrained(DEFAULT_MODEL).checkpoints


def test_specks_under_the_min_area_fraction_are_dropped() -> None:
    """Bright 3×3 specks in the background of a synthetic frame: kept as objects with
    ``min_area_fraction=0``, dropped by default (the YAML's value), the nuclei left as they were."""
    import math

    from inpaintaff.segmenter import DEFAULT_MIN_AREA_FRACTION
    from inpaintaff.tasks.compose import compose

    assert compose("predict", ["task=segment_folder", "data=folder", "data.images=."]).task.min_area_fraction == \
        DEFAULT_MIN_AREA_FRACTION > 0
    raw, gt = synthetic_frame((256, 256), seed=3, radius=12.0)
    image = raw.astype(np.float32)
    far = np.argwhere(ndi.distance_transform_edt(gt == 0) > 8)
    far = far[(far.min(axis=1) >= 2) & (far.max(axis=1) <= 252)]
    for y, x in np.random.default_rng(0).permutation(far)[:15]:
        image[y - 1:y + 2, x - 1:x + 2] = np.percentile(raw, 99.9)
    keep = Segmenter.pretrained(min_area_fraction=0.0).segment(image)
    dropped = Segmenter.pretrained().segment(image)
    diameter = Segmenter.pretrained().model_diameter / keep.scale.factor  # a nucleus's, at the input's scale
    min_area = DEFAULT_MIN_AREA_FRACTION * math.pi * diameter**2 / 4
    kept_areas = np.bincount(keep.labels.ravel())[1:]
    assert (kept_areas < min_area).sum() >= 5  # the specks are objects without it
    assert (np.bincount(dropped.labels.ravel())[1:] >= min_area).all()
    big = np.flatnonzero(kept_areas >= min_area) + 1
    assert dropped.labels.max() == big.size
    assert np.array_equal(dropped.labels > 0, np.isin(keep.labels, big))
    with pytest.raises(ValueError, match="min_area_fraction must be in"):
        Segmenter.pretrained(min_area_fraction=1.5)


def test_api_equals_command(images, tmp_path: Path) -> None:
    imgs, _ = images
    out = tmp_path / "out"
    seg = Segmenter.pretrained()
    result = seg.segment_folder(imgs, out, overrides=["trainer.enable_progress_bar=false"])
    assert result["n_images"] == 3
    for name, labels in _masks(out).items():
        np.testing.assert_array_equal(seg(read_channel(next(imgs.glob(f"{name}.*")))), labels)
    # ... and the API's folder call equals the command line.
    assert _command(imgs, tmp_path / "cmd") == 0
    for name, labels in _masks(tmp_path / "cmd").items():
        np.testing.assert_array_equal(_masks(out)[name], labels)


def test_resume_keeps_only_results_whose_record_matches(images, tmp_path: Path) -> None:
    src, _ = images
    imgs = tmp_path / "imgs"
    shutil.copytree(src, imgs)
    out = tmp_path / "out"
    assert _command(imgs, out) == 0
    stamp = {n: (out / "masks" / f"{n}.tif").stat().st_mtime_ns for n in _masks(out)}
    again = run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "trainer.enable_progress_bar=false"])
    assert again["n_segmented_now"] == 0 and again["n_kept"] == 3
    assert all((out / "masks" / f"{n}.tif").stat().st_mtime_ns == t for n, t in stamp.items())
    # Another setting into the same folder: an error naming the record and the setting.
    with pytest.raises(InputError, match=r"settings\.alpha: .* in the file, 2\.5 now"):
        run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "task.alpha=2.5"])
    # A changed input image is segmented again; the others are kept.
    raw = tifffile.imread(imgs / "c03.tif")
    tifffile.imwrite(imgs / "c03.tif", np.ascontiguousarray(raw[:, ::-1]))
    redo = run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "trainer.enable_progress_bar=false"])
    assert redo["n_segmented_now"] == 1
    assert (out / "masks" / "c03.tif").stat().st_mtime_ns != stamp["c03"]
    assert (out / "masks" / "b_02.tif").stat().st_mtime_ns == stamp["b_02"]


def test_an_interrupted_run_resumes_where_it_stopped(images, tmp_path: Path, monkeypatch) -> None:
    imgs, _ = images
    out = tmp_path / "out"
    import inpaintaff.tasks.segment_folder as task

    real, calls = task.segment_one, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which Lightning turns into an exception) mid-folder
        return real(*args, **kwargs)

    monkeypatch.setattr(task, "segment_one", failing)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "trainer.enable_progress_bar=false"])
    assert len(list((out / "records").glob("*.json"))) == 1
    assert not list(out.rglob("*.tmp*")), "a half-written file was left"
    monkeypatch.setattr(task, "segment_one", real)
    done = run_segment_folder([f"data.images={imgs}", f"paths.output_dir={out}", "trainer.enable_progress_bar=false"])
    assert done["n_kept"] == 1 and done["n_segmented_now"] == 2 and done["n_images"] == 3


@pytest.mark.slow
def test_two_processes_give_the_masks_of_one(images, tmp_path: Path) -> None:
    imgs, _ = images
    assert _command(imgs, tmp_path / "one") == 0
    assert _command(imgs, tmp_path / "two", "--devices", "2") == 0
    one, two = _masks(tmp_path / "one"), _masks(tmp_path / "two")
    assert sorted(one) == sorted(two) == ["b_02", "c03", "plate A1"]
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])
    rows = _csv(tmp_path / "two" / "images.csv")
    assert [r["image"] for r in rows] == ["b_02", "c03", "plate A1"]


def test_user_errors_are_clear(images, tmp_path: Path, capsys) -> None:
    imgs, _ = images
    assert _command(tmp_path / "nowhere", tmp_path / "o1") == 2
    assert "image folder not found" in capsys.readouterr().err
    assert _command(imgs, tmp_path / "o2", "--pattern", "*.jpg") == 2
    assert "no file matches" in capsys.readouterr().err
    with pytest.raises(InputError, match="truefg reads the masks"):
        run_segment_folder([f"data.images={imgs}", f"paths.output_dir={tmp_path / 'o3'}",
                            "task.foreground.source=truefg"])
    with pytest.raises(InputError, match="checkpoint not found"):
        run_segment_folder([f"data.images={imgs}", f"paths.output_dir={tmp_path / 'o4'}",
                            f"task.affinities_ckpt={tmp_path / 'none.ckpt'}"])
    assert not (tmp_path / "o3" / "masks").exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_images_of_the_dsb_folder(tmp_path: Path) -> None:
    """Three real DSB images (of three sizes) with their masks: the command runs, scores and resizes."""
    if not (DSB / "images").is_dir():
        pytest.skip(f"DSB 2018 folder not found at {DSB}")
    names = sorted(p.stem for p in (DSB / "images").glob("*.tif"))[:40:13]
    imgs, masks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    for n in names:
        (imgs / f"{n}.tif").symlink_to(DSB / "images" / f"{n}.tif")
        (masks / f"{n}.tif").symlink_to(DSB / "masks" / f"{n}.tif")
    assert _command(imgs, tmp_path / "out", "--masks", str(masks)) == 0
    rows = _csv(tmp_path / "out" / "images.csv")
    assert [r["image"] for r in rows] == names
    assert all(r["seg"] != "" and float(r["diameter"]) > 0 for r in rows)


def test_alpha_chosen_on_the_images_with_masks(images, tmp_path: Path) -> None:
    """task.select: α and fragment size chosen on the masked images, stored with their curve, and
    used for every mask (equal to the API with the chosen values)."""
    imgs, masks = images
    out = tmp_path / "out"
    result = run_segment_folder([f"data.images={imgs}", f"data.masks={masks}", f"paths.output_dir={out}",
                                 "task.select.enabled=true", "task.select.alphas=[1.0,3.0]",
                                 "task.select.min_sizes=[0,100]", "task.select.thresholds=[0.3,0.5]",
                                 "trainer.enable_progress_bar=false"])
    sel = result["selection"]
    rows = {(r["threshold"], r["alpha"], r["min_size"]): r["seg"] for r in sel["curve"]}
    assert len(rows) == 8 and sel["seg"] == max(rows.values()) >= rows[(0.5, 3.0, 100)]  # the stored α is in the grid
    assert rows[(0.3, 3.0, 100)] != rows[(0.5, 3.0, 100)]  # the threshold changes the masks
    stored = json.loads((out / "alpha_selection.json").read_text())["fgnet"]
    assert (stored["alpha"], stored["min_size"], stored["threshold"]) == (sel["alpha"], sel["min_size"],
                                                                         sel["threshold"])
    assert (out / "seg_vs_alpha.png").is_file()
    seg = Segmenter.pretrained(alpha=sel["alpha"], min_size=sel["min_size"], threshold=sel["threshold"])
    for name, labels in _masks(out).items():
        np.testing.assert_array_equal(seg(read_channel(next(imgs.glob(f"{name}.*")))), labels)
    with pytest.raises(InputError, match="task.select needs images with masks"):
        run_segment_folder([f"data.images={imgs}", f"paths.output_dir={tmp_path / 'o2'}", "task.select.enabled=true"])


def test_a_time_lapse_gives_a_label_stack_equal_to_its_planes_segmented_alone(tmp_path: Path, monkeypatch) -> None:
    """An ImageJ time-lapse (axes TYX) beside its planes as single files: every plane is segmented as
    the single file is, the masks of the stack come back as one label stack named like the file,
    its mask stack scores it, the file is hashed once for all its planes' records, a rerun keeps
    everything, and ``Segmenter.segment_stack`` gives the same."""
    import inpaintaff.io.records as records

    hashed: list[str] = []
    real_sha1 = records.file_sha1

    def counted_sha1(path, *args):
        hashed.append(Path(path).name)
        return real_sha1(path, *args)

    monkeypatch.setattr(records, "file_sha1", counted_sha1)
    imgs, masks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    planes = [synthetic_frame((96, 112), seed=s, radius=12.0, density=0.3) for s in (4, 5, 6)]
    movie = np.stack([raw for raw, _ in planes])
    tifffile.imwrite(imgs / "movie.tif", movie, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(masks / "movie.tif", np.stack([lab for _, lab in planes]).astype(np.uint16))
    for i, (raw, lab) in enumerate(planes):
        tifffile.imwrite(imgs / f"t{i}.tif", raw)
        tifffile.imwrite(masks / f"t{i}.tif", lab.astype(np.uint16))
    out = tmp_path / "out"
    assert _command(imgs, out, "--masks", str(masks)) == 0
    assert hashed.count("movie.tif") == 1 and hashed.count("t0.tif") == 1
    stack = tifffile.imread(out / "masks" / "movie.tif")
    assert stack.shape == movie.shape and stack.max() > 3
    with tifffile.TiffFile(out / "masks" / "movie.tif") as tif:  # 3 label planes, not an RGB image
        assert tif.series[0].axes == "TYX" and len(tif.pages) == 3
    for i in range(len(planes)):
        single = tifffile.imread(out / "masks" / f"t{i}.tif")
        np.testing.assert_array_equal(stack[i], single)
        np.testing.assert_array_equal(tifffile.imread(out / "masks" / "movie" / f"p{i:04d}.tif"), single)
    rows = {r["image"]: r for r in _csv(out / "images.csv")}
    assert [rows[f"movie/p{i:04d}"]["plane"] for i in range(3)] == ["0", "1", "2"] and rows["t0"]["plane"] == ""
    for i in range(3):  # each plane scored against its own label plane
        assert rows[f"movie/p{i:04d}"]["seg"] == rows[f"t{i}"]["seg"] != ""
    assert {o["plane"] for o in _csv(out / "objects.csv") if o["image"].startswith("movie/")} == {"0", "1", "2"}
    result = json.loads((out / "segment_folder_result.json").read_text())
    assert result["n_images"] == 6 and result["stacks"] == {"movie": str(out / "masks" / "movie.tif")}
    written = (out / "masks" / "movie.tif").stat().st_mtime_ns
    assert _command(imgs, out, "--masks", str(masks)) == 0
    again = json.loads((out / "segment_folder_result.json").read_text())
    assert again["n_segmented_now"] == 0 and (out / "masks" / "movie.tif").stat().st_mtime_ns == written
    np.testing.assert_array_equal(Segmenter.pretrained().segment_stack(movie), stack)


def test_a_3d_file_without_axes_is_a_stack_only_when_asked(tmp_path: Path) -> None:
    imgs = tmp_path / "images"
    imgs.mkdir()
    movie = np.stack([synthetic_frame((80, 96), seed=s, radius=12.0, density=0.3)[0] for s in (7, 8, 9, 10, 11)])
    tifffile.imwrite(imgs / "zstack.tif", movie)  # no metadata: 5 channels or 5 planes?
    assert _command(imgs, tmp_path / "guess") == 2  # refused, the message names data.planes
    assert _command(imgs, tmp_path / "out", "--planes") == 0
    stack = tifffile.imread(tmp_path / "out" / "masks" / "zstack.tif")
    assert stack.shape == movie.shape and all(plane.max() > 0 for plane in stack)
    # One plane of the stack in the split: its mask, and no label stack that would lack the others.
    assert _command(imgs, tmp_path / "one", "--planes", "data.splits.predict=[zstack/p0002]") == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "one" / "masks" / "zstack" / "p0002.tif"), stack[2])
    assert not (tmp_path / "one" / "masks" / "zstack.tif").exists()
