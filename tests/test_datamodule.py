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
