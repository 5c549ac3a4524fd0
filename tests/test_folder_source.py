"""A plain folder of images as a frame source: listing, channels, masks, and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from inpaintaff.data.datamodule import CTCDataModule
from inpaintaff.data.folder import FolderDataModule
from inpaintaff.data.sources import FrameSource
from inpaintaff.io.folder import list_folder, read_channel, read_mask
from inpaintaff.utils.errors import InputError


def _image(seed: int, shape=(40, 50)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(np.uint16)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    tifffile.imwrite(d / "img_a.tif", _image(0))
    tifffile.imwrite(d / "t1.tif", _image(1, (64, 30)))  # names the CTC layout would skip
    Image.fromarray((_image(2) // 16).astype(np.uint8)).save(d / "cell 3.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_lists_every_image_by_name_with_sizes_that_differ(folder: Path) -> None:
    items = list_folder(folder)
    assert [i.name for i in items] == ["cell 3", "img_a", "t1"]
    shapes = {i.name: read_channel(i.path).shape for i in items}
    assert shapes == {"cell 3": (40, 50), "img_a": (40, 50), "t1": (64, 30)}
    assert [i.name for i in list_folder(folder, "*.png")] == ["cell 3"]
    assert [i.name for i in list_folder(folder, ["t*.tif", "*.png"])] == ["cell 3", "t1"]


@pytest.mark.parametrize(("make", "match"), [
    (lambda d: d / "missing", "not found"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty"),
    (lambda d: (d / "f.tif").write_bytes(b"") or d / "f.tif", "is a file"),
])
def test_missing_empty_or_file_folder_is_an_error(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(InputError, match=match):
        list_folder(make(tmp_path))


def test_a_pattern_matching_nothing_names_what_is_there(folder: Path) -> None:
    with pytest.raises(InputError, match=r"no file matches .*\*\.jpg.*other file"):
        list_folder(folder, "*.jpg")


def test_masks_pair_by_stem_and_a_mask_without_image_is_an_error(folder: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    tifffile.imwrite(masks / "img_a.tif", np.ones((40, 50), np.uint16))
    items = {i.name: i for i in list_folder(folder, masks=masks)}
    assert items["img_a"].mask_path == masks / "img_a.tif" and items["t1"].mask_path is None
    tifffile.imwrite(masks / "img_zz.tif", np.ones((40, 50), np.uint16))
    with pytest.raises(InputError, match="img_zz.*mask without its image"):
        list_folder(folder, masks=masks)


def test_ctc_gt_masks_pair_with_their_frames(tmp_path: Path) -> None:
    """``--masks <seq>_GT/SEG`` as the CTC ships it: ``man_seg013.tif`` is the mask of ``t013.tif``. GT masks of
    frames not in the folder are left out (the GT covers the sequence), unless none matches; two masks of
    one image are an error."""
    imgs, masks = tmp_path / "imgs", tmp_path / "SEG"
    imgs.mkdir()
    masks.mkdir()
    for t in ("t013", "t052", "t0077"):
        tifffile.imwrite(imgs / f"{t}.tif", _image(0))
    for t in ("013", "0077"):
        tifffile.imwrite(masks / f"man_seg{t}.tif", np.ones((40, 50), np.uint16))
    items = {i.name: i.mask_path for i in list_folder(imgs, masks=masks)}
    assert items == {"t013": masks / "man_seg013.tif", "t0077": masks / "man_seg0077.tif", "t052": None}
    tifffile.imwrite(masks / "man_seg021.tif", np.ones((40, 50), np.uint16))
    assert {i.name: i.mask_path for i in list_folder(imgs, masks=masks)} == items
    only_other = tmp_path / "SEG2"
    only_other.mkdir()
    (masks / "man_seg021.tif").rename(only_other / "man_seg021.tif")
    with pytest.raises(InputError, match="man_seg021.*no CTC GT mask .* of the folder's images"):
        list_folder(imgs, masks=only_other)
    tifffile.imwrite(masks / "t013.tif", np.ones((40, 50), np.uint16))
    with pytest.raises(InputError, match="two masks of image 't013'"):
        list_folder(imgs, masks=masks)


def test_two_images_of_one_stem_are_an_error(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _image(0))
    tifffile.imwrite(tmp_path / "a.tiff", _image(1))
    with pytest.raises(InputError, match="two images named 'a'"):
        list_folder(tmp_path)


def test_channels_are_chosen_and_ambiguity_is_an_error(tmp_path: Path) -> None:
    rgb = np.stack([_image(0), _image(1), _image(2)], axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    with pytest.raises(InputError, match="3 channels.*data.channel"):
        read_channel(tmp_path / "rgb.tif")
    np.testing.assert_array_equal(read_channel(tmp_path / "rgb.tif", 1), rgb[..., 1].astype(np.float32))
    chw = np.stack([_image(3), _image(4)])
    tifffile.imwrite(tmp_path / "chw.tif", chw)
    np.testing.assert_array_equal(read_channel(tmp_path / "chw.tif", 1), chw[1].astype(np.float32))
    with pytest.raises(InputError, match="data.channel=5 but the image has 2 channels"):
        read_channel(tmp_path / "chw.tif", 5)
    grey = (_image(5) // 16).astype(np.uint8)
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "grey_rgb.png")
    np.testing.assert_array_equal(read_channel(tmp_path / "grey_rgb.png"), grey.astype(np.float32))


@pytest.mark.parametrize(("array", "match"), [
    (np.full((20, 20), 7, np.uint16), "constant"),
    (np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32), "NaN"),
    (np.zeros((3, 20, 20, 5), np.uint16), "2D"),
])
def test_bad_images_are_errors_naming_the_file(tmp_path: Path, array: np.ndarray, match: str) -> None:
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, array)
    with pytest.raises(InputError, match=match) as err:
        read_channel(path)
    assert err.value.path == path


def test_a_mask_of_another_shape_or_of_fractions_is_an_error(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "m.tif", np.ones((10, 10), np.uint16))
    with pytest.raises(InputError, match="mask of shape"):
        read_mask(tmp_path / "m.tif", (12, 10))
    tifffile.imwrite(tmp_path / "f.tif", np.full((10, 10), 0.5, np.float32))
    with pytest.raises(InputError, match="integers"):
        read_mask(tmp_path / "f.tif", (10, 10))


def test_folder_module_serves_frames_named_by_stem(folder: Path) -> None:
    dm = FolderDataModule(folder, splits={"val": ["t1"]})
    dm.prepare_data()
    assert isinstance(dm, FrameSource) and isinstance(CTCDataModule("x", "y", {}), FrameSource)
    assert [r.name for r in dm.frames("predict")] == ["cell 3", "img_a", "t1"]
    assert [r.name for r in dm.frames("val")] == ["t1"]
    img = dm.load_image(dm.frames("val")[0])
    assert img.shape == (64, 30) and img.dtype == np.float32
    assert not dm._cache  # streaming: nothing kept
    with pytest.raises(InputError, match="names image.*nope"):
        FolderDataModule(folder, splits={"test": ["nope"]}).frames("test")
    with pytest.raises(InputError, match="needs data.images"):
        FolderDataModule("???")


def test_label_budget_by_shape_labels_every_kind_of_image(tmp_path: Path) -> None:
    images, masks = tmp_path / "imgs", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    shapes = {f"big_{i}": (48, 48) for i in range(6)} | {"odd": (40, 56)}
    for i, (stem, shape) in enumerate(shapes.items()):
        tifffile.imwrite(images / f"{stem}.tif", _image(i, shape))
        lab = np.zeros(shape, np.uint16)
        lab[10:20, 10:20] = 1
        tifffile.imwrite(masks / f"{stem}.tif", lab)

    def drawn(draw: str, seed: int) -> list[tuple[int, ...]]:
        dm = FolderDataModule(images, masks=masks, train_mode="labeled", label_frames=2, label_draw=draw,
                              crop_size=32, seed=seed, splits={"train": None})
        dm.setup("fit")
        return sorted(img.shape for img in dm._train.images)

    assert all(drawn("by_shape", seed) == [(40, 56), (48, 48)] for seed in range(4))
    assert any(drawn("random", seed) == [(48, 48), (48, 48)] for seed in range(4))
    with pytest.raises(ValueError, match="label_draw"):
        FolderDataModule(images, label_draw="nearest")


def test_stacks_are_read_plane_by_plane_by_their_axes(tmp_path: Path) -> None:
    """ImageJ and OME stacks (T or Z axes) are planes; a 3D file without axes only with planes=true;
    a time-lapse with channels gives each plane's chosen channel; a stack's mask holds one label plane
    per plane; splits name a whole stack or one plane."""
    from inpaintaff.data.folder import FolderDataModule
    from inpaintaff.io.folder import count_planes

    rng = np.random.default_rng(0)
    tyx = rng.integers(0, 1000, (3, 20, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", tyx, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "ome.tif", tyx[:2], metadata={"axes": "ZYX"})
    tcyx = rng.integers(0, 1000, (2, 3, 20, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "tcyx.tif", tcyx, imagej=True, metadata={"axes": "TCYX"})
    tifffile.imwrite(tmp_path / "plain.tif", tyx)
    tifffile.imwrite(tmp_path / "flat.tif", tyx[0])
    assert count_planes(tmp_path / "movie.tif", None) == 3 and count_planes(tmp_path / "ome.tif", None) == 2
    assert count_planes(tmp_path / "plain.tif", None) is None and count_planes(tmp_path / "plain.tif", True) == 3
    assert count_planes(tmp_path / "movie.tif", False) is None and count_planes(tmp_path / "flat.tif", True) is None
    masks = tmp_path / "masks"
    masks.mkdir()
    labels = rng.integers(0, 4, (3, 20, 24)).astype(np.uint16)
    tifffile.imwrite(masks / "movie.tif", labels)
    tifffile.imwrite(masks / "ome.tif", labels[0])  # one plane's mask for a stack of two: an error when read

    dm = FolderDataModule(tmp_path, pattern=["movie.tif", "ome.tif", "tcyx.tif", "flat.tif"], masks=masks, channel=1)
    refs = {r.name: r for r in dm.frames("test")}
    assert sorted(refs) == ["flat", "movie/p0000", "movie/p0001", "movie/p0002", "ome/p0000", "ome/p0001",
                            "tcyx/p0000", "tcyx/p0001"]
    with pytest.raises(InputError, match="single channel"):  # channel=1 of a one-channel plane
        dm.load_raw(refs["movie/p0001"])
    dm = FolderDataModule(tmp_path, pattern=["movie.tif", "ome.tif", "tcyx.tif"], masks=masks)
    refs = {r.name: r for r in dm.frames("test")}
    for p in range(3):
        np.testing.assert_array_equal(dm.load_raw(refs[f"movie/p{p:04d}"]), tyx[p].astype(np.float32))
        np.testing.assert_array_equal(dm.load_labels(refs[f"movie/p{p:04d}"]), labels[p])
    assert not np.array_equal(dm.load_image(refs["movie/p0000"]), dm.load_image(refs["movie/p0001"]))
    with pytest.raises(InputError, match="ome.tif: the mask of a stack must be a stack of label planes"):
        dm.load_labels(refs["ome/p0001"])
    with pytest.raises(InputError, match=r"tcyx.tif: plane 1: image has 3 channels") as exc:
        dm.load_raw(refs["tcyx/p0001"])
    assert "data.planes" not in str(exc.value)  # it is a plane already: only the channel is asked for
    with_channel = FolderDataModule(tmp_path, pattern="tcyx.tif", channel=2)
    for p, ref in enumerate(with_channel.frames("test")):
        np.testing.assert_array_equal(with_channel.load_raw(ref), tcyx[p, 2].astype(np.float32))
    split = FolderDataModule(tmp_path, pattern=["movie.tif", "ome.tif"], splits={"val": ["movie", "ome/p0001"]})
    assert [r.name for r in split.frames("val")] == ["movie/p0000", "movie/p0001", "movie/p0002", "ome/p0001"]
    with pytest.raises(InputError, match="plain.tif: image has 3 channels.*data.planes=true"):
        FolderDataModule(tmp_path, pattern="plain.tif").load_raw(FolderDataModule(tmp_path, pattern="plain.tif")
                                                                 .frames("test")[0])
    assert isinstance(dm._stack[1][0], np.memmap)  # an uncompressed stack is read plane by plane
    tifffile.imwrite(tmp_path / "zlib.tif", tyx, compression="zlib", metadata={"axes": "TYX"})
    packed = FolderDataModule(tmp_path, pattern="zlib.tif")
    for p, ref in enumerate(packed.frames("test")):  # compressed: read whole, the same planes
        np.testing.assert_array_equal(packed.load_raw(ref), tyx[p].astype(np.float32))
    never = FolderDataModule(tmp_path, pattern="movie.tif", planes=False)
    assert [r.name for r in never.frames("test")] == ["movie"]
