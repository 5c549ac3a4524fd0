"""CTCDataModule on the synthetic set and on the shared HeLa frames."""

from __future__ import annotations

import hydra
import numpy as np
import pytest
import torch

from inpaintaff.data.datamodule import CropDataset, CTCDataModule
from inpaintaff.utils.errors import InputError

SPLITS = {
    "raw": [{"seq": "01", "frames": None}],
    "train": [{"seq": "01", "frames": None}],
    "val": [{"seq": "02", "frames": [0, 1]}],
    "predict": [{"seq": "02", "frames": [0]}],
}


def _dm(root, **kw) -> CTCDataModule:
    args = dict(root=root, dataset="SYNTH-HeLa", splits=SPLITS, crop_size=64, batch_size=4, samples_per_epoch=8)
    args.update(kw)
    dm = CTCDataModule(**args)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_raw_crops_are_normalised(synthetic_root):
    dm = _dm(synthetic_root)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image"}
    img = batch["image"]
    assert img.shape == (4, 1, 64, 64) and img.dtype == torch.float32
    full = dm.load_image(dm.frames("raw")[0])
    assert np.percentile(full, 1) == pytest.approx(0, abs=1e-4)
    assert np.percentile(full, 99.8) == pytest.approx(1, abs=1e-4)
    assert -0.5 < float(img.min()) and float(img.max()) < 2.0


def test_crops_reproducible_with_seed(synthetic_root):
    def first_batch():
        torch.manual_seed(7)
        return next(iter(_dm(synthetic_root).train_dataloader()))["image"]

    a, b = first_batch(), first_batch()
    torch.testing.assert_close(a, b)
    torch.manual_seed(8)
    c = next(iter(_dm(synthetic_root).train_dataloader()))["image"]
    assert not torch.equal(a, c)


def test_labeled_crops_align_with_image():
    # Image equal to its labels: any misalignment of the two crops shows.
    labels = np.random.default_rng(0).integers(0, 50, (100, 120))
    ds = CropDataset([labels.astype(np.float32)], 32, 10, [labels])
    for i in range(len(ds)):
        item = ds[i]
        np.testing.assert_array_equal(item["image"][0].numpy(), item["labels"].numpy().astype(np.float32))


def test_labeled_mode_with_budget(synthetic_root):
    dm = _dm(synthetic_root, train_mode="labeled", label_frames=2, max_instances=10, crop_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].shape == (4, 32, 32) and batch["labels"].dtype == torch.int64
    assert dm.n_train_instances <= 2 * 10
    full = _dm(synthetic_root, train_mode="labeled")
    assert full.n_train_instances > dm.n_train_instances


def test_val_crops_fixed(synthetic_root):
    dm = _dm(synthetic_root)
    a = next(iter(dm.val_dataloader()))["image"]
    torch.manual_seed(123)
    b = next(iter(_dm(synthetic_root).val_dataloader()))["image"]
    torch.testing.assert_close(a, b)


def test_bad_inputs(synthetic_root, tmp_path):
    with pytest.raises(InputError, match="smaller than crop_size 512"):
        _dm(synthetic_root, crop_size=512)
    with pytest.raises(InputError, match="data root not found"):
        _dm(tmp_path / "nowhere")
    bad = dict(SPLITS, val=[{"seq": "02", "frames": [42]}])
    with pytest.raises(InputError, match="t042.tif"):
        _dm(synthetic_root, splits=bad)
    with pytest.raises(ValueError, match="unknown split"):
        _dm(synthetic_root, splits=dict(SPLITS, training=[]))
    with pytest.raises(ValueError, match="train_mode"):
        _dm(synthetic_root, train_mode="supervised")


def test_synthetic_config_generates_data(compose, tmp_path):
    cfg = compose("train", ["data.generate.n_frames=2", "data.generate.shape=[96,96]", "data.crop_size=64",
                            "data.root=" + str(tmp_path / "gen"), "data.splits.val=[]"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    assert len(dm.frames("raw")) == 2
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["image"].shape[-2:] == (64, 64)


def test_shared_hela(compose, shared_root):
    cfg = compose("train", ["data=shared_hela", f"data.root={shared_root}", "data.batch_size=2"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    raw, val = dm.frames("raw"), dm.frames("val")
    assert len(raw) == 42 and {r.frame for r in raw}.isdisjoint({r.frame for r in val})
    assert [r.frame for r in dm.frames("train")] == [13, 52]
    img = dm.load_image(dm.frames("train")[0])
    assert img.shape == (700, 1100)
    assert np.percentile(img, 1) == pytest.approx(0, abs=1e-4)
    assert np.percentile(img, 99.8) == pytest.approx(1, abs=1e-4)
    labels = dm.load_labels(dm.frames("train")[0])
    assert labels.max() == 59
    dm.train_mode = "labeled"
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, 128, 128) and batch["labels"].shape == (2, 128, 128)


def test_paper_split_missing_frames_are_clear_errors(compose, shared_root):
    cfg = compose("train", ["data=ctc_hela", f"data.root={shared_root}"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    assert [r.frame for r in dm.frames("train")] == [13, 52]
    with pytest.raises(InputError, match=r"t076\.tif.*raw frame 76"):
        dm.frames("val")
    with pytest.raises(InputError, match=r"Fluo-N2DL-HeLa/02: sequence folder not found"):
        dm.frames("test")


@pytest.mark.parametrize("key", ["crop_size", "batch_size"])
def test_sizes_below_one_name_the_key(synthetic_root, key):
    with pytest.raises(ValueError, match=rf"data\.{key} must be >= 1, got 0"):
        _dm(synthetic_root, **{key: 0})


def _ctc(root, seqs=("01",), gt=(), frames=(0, 1)):
    """A tiny CTC dataset ``DS`` (GT only for the sequences in ``gt``)."""
    import tifffile

    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    for seq in seqs:
        (root / "DS" / seq).mkdir(parents=True, exist_ok=True)
        for t in frames:
            tifffile.imwrite(root / "DS" / seq / f"t{t:03d}.tif", img)
    for seq in gt:
        (root / "DS" / f"{seq}_GT" / "SEG").mkdir(parents=True, exist_ok=True)
        for t in frames:
            tifffile.imwrite(root / "DS" / f"{seq}_GT" / "SEG" / f"man_seg{t:03d}.tif", (img > 2000).astype(np.uint16))
    return root


def _frames(root, split, entries, dataset="DS"):
    return CTCDataModule(root, dataset, splits={split: entries}).frames(split)


def test_split_entry_without_frames_is_an_error(synthetic_root, tmp_path):
    # `seq: "."` is the dataset folder itself: no tNNN.tif there.
    with pytest.raises(InputError, match=r"SYNTH-HeLa: split 'raw' entry \{seq: '\.', frames: null\} yields no "
                                         r"frame: frames: null means every raw frame tNNN\.tif"):
        _frames(synthetic_root, "raw", [{"seq": ".", "frames": None}], "SYNTH-HeLa")
    root = _ctc(tmp_path, seqs=("01", "02"), gt=("01",))
    # A labeled split's `frames: null` means every frame with GT: sequence 02 has none.
    with pytest.raises(InputError, match=r"DS/02_GT/SEG: split 'test' entry \{seq: '02', frames: null\} yields no "
                                         r"frame: in split 'test', frames: null means every frame with a GT"):
        _frames(root, "test", [{"seq": "01", "frames": None}, {"seq": "02", "frames": None}])
    with pytest.raises(InputError, match=r"DS/01: split 'predict' .* exclude removes all 2 frame\(s\)"):
        _frames(root, "predict", [{"seq": "01", "frames": None, "exclude": [0, 1]}])
    with pytest.raises(InputError, match=r"DS/01: split 'val' entry \{seq: '01', frames: \[\]\} lists no frame"):
        _frames(root, "val", [{"seq": "01", "frames": []}])
    # A split without entries is empty, as before; entries that yield frames are unchanged.
    assert _frames(root, "val", []) == []
    assert [r.frame for r in _frames(root, "train", [{"seq": "01", "frames": None}])] == [0, 1]
    assert [(r.seq, r.gt_path) for r in _frames(root, "raw", [{"seq": "02", "frames": None}])] == [("02", None)] * 2


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "image.tif").write_bytes(b"x")
    for generate in (None, {"n_sequences": 1, "n_frames": 2, "shape": [64, 64]}):
        dm = CTCDataModule(tmp_path / "image.tif", "SYNTH-HeLa", splits={}, generate=generate)
        with pytest.raises(InputError, match=r"image\.tif: data\.root is a file, not a folder.*"
                                             r"data=folder data\.images=<folder>"):
            dm.prepare_data()


GEN = {"n_sequences": 1, "n_frames": 2, "shape": [64, 64]}


def _generate(root, dataset="SYNTH-HeLa"):
    dm = CTCDataModule(root, dataset, splits={"raw": [{"seq": "01", "frames": None}]}, generate=GEN)
    dm.prepare_data()
    return [r.frame for r in dm.frames("raw")]


def test_generation_only_into_a_folder_the_generator_owns(tmp_path):
    import shutil

    from inpaintaff.data.synthetic import MARKER

    # A user's folder of images: an error naming it, and nothing is written into it.
    user = _ctc(tmp_path / "mine", seqs=("01",))
    (user / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(user) for p in user.rglob("*"))
    with pytest.raises(InputError, match=r"mine: data\.root holds no SYNTH-HeLa/ folder, and data\.generate is set: "
                                         r"synthetic data are generated only into a missing or empty folder.*"
                                         r"2 other item\(s\) \(DS, notes\.txt\).*data=folder data\.images=<folder>.*"
                                         r"data\.generate=null"):
        _generate(user)
    assert sorted(p.relative_to(user) for p in user.rglob("*")) == before
    # Missing and empty folders are the generator's; so is one holding only generated data sets.
    assert _generate(tmp_path / "new") == [0, 1]
    assert (tmp_path / "new" / "SYNTH-HeLa" / MARKER).is_file()
    (tmp_path / "empty").mkdir()
    assert _generate(tmp_path / "empty") == [0, 1]
    assert _generate(tmp_path / "new", "SYNTH-Other") == [0, 1]
    # A data set generated by earlier versions (no marker) is recognised by its exact layout ...
    shutil.copytree(tmp_path / "new" / "SYNTH-HeLa", tmp_path / "old" / "SYNTH-Old")
    (tmp_path / "old" / "SYNTH-Old" / MARKER).unlink()
    assert _generate(tmp_path / "old") == [0, 1]
    # ... which a real CTC download (TRA folders, sparse SEG) does not have.
    shutil.copytree(tmp_path / "new" / "SYNTH-Other", tmp_path / "ctc" / "Fluo-X")
    (tmp_path / "ctc" / "Fluo-X" / MARKER).unlink()
    (tmp_path / "ctc" / "Fluo-X" / "01_GT" / "TRA").mkdir()
    with pytest.raises(InputError, match=r"1 other item\(s\) \(Fluo-X\)"):
        _generate(tmp_path / "ctc")
    assert not (tmp_path / "ctc" / "SYNTH-HeLa").exists()


def test_synthetic_fixture_is_marked(synthetic_root):
    from inpaintaff.data.synthetic import MARKER, foreign_entries

    assert (synthetic_root / "SYNTH-HeLa" / MARKER).is_file()
    assert foreign_entries(synthetic_root) == []
