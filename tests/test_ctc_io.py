"""CTC layout I/O, normalisation and bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.io import ctc
from inpaintaff.utils.errors import InputError


def test_paths_and_listing(synthetic_root):
    frames = ctc.list_raw_frames(synthetic_root, "SYNTH-HeLa", "01")
    assert frames == [0, 1, 2, 3, 4, 5]
    assert ctc.list_gt_frames(synthetic_root, "SYNTH-HeLa", "01") == frames
    assert ctc.raw_path(synthetic_root, "SYNTH-HeLa", "01", 3).name == "t003.tif"
    assert ctc.res_path(synthetic_root, "SYNTH-HeLa", "01", 3).as_posix().endswith("SYNTH-HeLa/01_RES/mask003.tif")


def test_four_digit_frames(tmp_path):
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    tifffile.imwrite(_mk(tmp_path / "DS" / "01") / "t0123.tif", img)
    assert ctc.list_raw_frames(tmp_path, "DS", "01") == [123]
    np.testing.assert_array_equal(ctc.read_image(ctc.raw_path(tmp_path, "DS", "01", 123)), img.astype(np.float32))


def _mk(p):
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_missing_frame_names_file(synthetic_root):
    with pytest.raises(InputError, match=r"t099\.tif.*raw frame 99"):
        ctc.raw_path(synthetic_root, "SYNTH-HeLa", "01", 99)
    with pytest.raises(InputError, match=r"man_seg099\.tif"):
        ctc.gt_seg_path(synthetic_root, "SYNTH-HeLa", "01", 99)
    with pytest.raises(InputError, match="sequence folder not found"):
        ctc.raw_path(synthetic_root, "SYNTH-HeLa", "07", 0)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 8, 8), np.uint16) + np.arange(3)[:, None, None], "expected a 2D image"),
        (np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), "RGB"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), 7, np.uint16), "constant"),
    ],
)
def test_bad_images(tmp_path, array, message):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, array)
    with pytest.raises(InputError, match=message) as info:
        ctc.read_image(path)
    assert "bad.tif" in str(info.value)


def test_unreadable_and_missing(tmp_path):
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="junk.tif: cannot read TIFF"):
        ctc.read_image(tmp_path / "junk.tif")
    with pytest.raises(InputError, match="file not found"):
        ctc.read_image(tmp_path / "none.tif")


def test_labels_must_be_integers(tmp_path):
    tifffile.imwrite(tmp_path / "l.tif", np.array([[0.5, 1.0], [2.0, 0.0]], np.float32))
    with pytest.raises(InputError, match="labels must be integers"):
        ctc.read_labels(tmp_path / "l.tif")
    tifffile.imwrite(tmp_path / "ok.tif", np.array([[0.0, 1.0], [2.0, 0.0]], np.float32))
    assert ctc.read_labels(tmp_path / "ok.tif").dtype == np.int64


def test_write_labels_roundtrip_and_limits(tmp_path):
    labels = np.array([[0, 1], [2, 65535]], dtype=np.int64)
    path = ctc.write_labels(tmp_path / "RES" / "mask000.tif", labels)
    np.testing.assert_array_equal(ctc.read_labels(path), labels)
    assert tifffile.imread(path).dtype == np.uint16
    with pytest.raises(InputError, match="65535"):
        ctc.write_labels(tmp_path / "RES" / "mask001.tif", labels + 1)
    # No half-written or temporary file is left behind by the failed write.
    assert sorted(p.name for p in (tmp_path / "RES").iterdir()) == ["mask000.tif"]


def test_write_label_stack_streams_planes_and_leaves_nothing_when_one_is_bad(tmp_path):
    planes = [np.full((6, 5), i, np.int64) for i in range(3)]
    path = ctc.write_label_stack(tmp_path / "s.tif", iter(planes), (3, 6, 5), "ZYX")
    np.testing.assert_array_equal(tifffile.imread(path), np.stack(planes))
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "ZYX"
    bad = [planes[0], np.zeros((6, 4), np.int64)]
    with pytest.raises(InputError, match="label plane 1 has shape"):
        ctc.write_label_stack(tmp_path / "bad.tif", iter(bad), (2, 6, 5))
    with pytest.raises(InputError, match=r"\[0, 65535\]"):
        ctc.write_label_stack(tmp_path / "big.tif", iter([np.full((6, 5), 70000)]), (1, 6, 5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]  # no half-written file


def test_percentile_normalize():
    rng = np.random.default_rng(0)
    img = rng.uniform(100, 200, (64, 64)).astype(np.float32)
    out = percentile_normalize(img, 1, 99)
    assert out.dtype == np.float32
    assert np.percentile(out, 1) == pytest.approx(0.0, abs=1e-5)
    assert np.percentile(out, 99) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(InputError, match="NaN"):
        percentile_normalize(np.full((4, 4), np.nan), source="x.tif")
    with pytest.raises(InputError, match="constant"):
        percentile_normalize(np.ones((4, 4)), source="x.tif")
    with pytest.raises(ValueError, match="percentiles"):
        percentile_normalize(img, 50, 10)


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    from inpaintaff.io.files import write_json

    write_json(tmp_path / "r.json", {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o666 & ~umask


def _frames_folder(folder, names):
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    _mk(folder)
    for name in names:
        if name.endswith((".tif", ".tiff")):
            tifffile.imwrite(folder / name, img)
        else:
            (folder / name).write_bytes(b"not an image")
    return folder


def test_names_off_the_ctc_pattern_are_warned(tmp_path, caplog):
    odd = ["img_a.tif", "t012.png", "t1.tif", "t10000.tif"]
    _frames_folder(tmp_path / "DS" / "01", ["t000.tif", "t0001.tiff", "notes.txt", *odd])
    with caplog.at_level("WARNING", logger="inpaintaff.io.ctc"):
        assert ctc.list_raw_frames(tmp_path, "DS", "01") == [0, 1]
    assert "4 image file(s) skipped" in caplog.text and "img_a.tif, t012.png, t1.tif, ..." in caplog.text
    assert "notes.txt" not in caplog.text
    # A frame asked for by number that only exists under an odd name says so.
    with pytest.raises(InputError, match=r"t005\.tif: raw frame 5 .*4 image file\(s\) not named tNNN\.tif"):
        ctc.raw_path(tmp_path, "DS", "01", 5)


def test_clean_folder_is_not_warned(synthetic_root, caplog):
    with caplog.at_level("WARNING", logger="inpaintaff.io.ctc"):
        ctc.list_raw_frames(synthetic_root, "SYNTH-HeLa", "01")
    assert not caplog.records


def test_no_name_on_the_ctc_pattern_is_an_error(tmp_path):
    folder = _frames_folder(tmp_path / "DS" / "01", ["t1.tif", "img_a.tif", "t012.png"])
    with pytest.raises(InputError, match="no raw frame found") as info:
        ctc.list_raw_frames(tmp_path, "DS", "01")
    message = str(info.value)
    assert message.startswith(str(folder))
    assert "tNNN.tif (3 or 4 digits" in message and "3 image file(s)" in message
    assert "data=folder data.images=<folder>" in message
    # A folder without any image is just empty.
    _mk(tmp_path / "DS" / "02")
    assert ctc.list_raw_frames(tmp_path, "DS", "02") == []
