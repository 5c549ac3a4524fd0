"""FGNET's self-training: pseudo-labels of the unlabeled (raw) frames from a foreground's probabilities
(``data.pseudo``), mixed with the labeled crops at ``share``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from inpaintaff.data.datamodule import CTCDataModule
from inpaintaff.data.pseudo import IGNORE_LABEL, PseudoLabels, crop_weights
from inpaintaff.io import ctc
from inpaintaff.io.foreground import foreground_path, write_foreground
from inpaintaff.modules.supervised import IGNORE
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.utils.errors import InputError

SYNTH = "SYNTH-HeLa"
SPLITS = {"raw": [{"seq": "02", "frames": None}], "train": [{"seq": "01", "frames": None}]}


def test_labels_follow_the_thresholds_and_ignore_the_uncertain() -> None:
    prob = np.array([[0.0, 0.3, 0.31, 0.5], [0.69, 0.7, 0.9, 1.0]], dtype=np.float32)
    lab = PseudoLabels(dir="x", high=0.7, low=0.3).labels(prob)
    np.testing.assert_array_equal(lab, [[0, 0, -1, -1], [-1, 1, 1, 1]])
    assert IGNORE_LABEL == IGNORE  # the loss leaves out what the pseudo-labels leave open
    with pytest.raises(ValueError, match="low < high"):
        PseudoLabels(dir="x", high=0.3, low=0.5)
    with pytest.raises(ValueError, match="share must lie in"):
        PseudoLabels(dir="x", share=1.0)
    assert not PseudoLabels().active


def test_crop_weights_give_each_group_its_share() -> None:
    a = [np.zeros((10, 10)), np.zeros((20, 10))]
    b = [np.zeros((50, 50))]
    w = crop_weights([a, b], [0.25, 0.75])
    np.testing.assert_allclose(w, [0.25 / 3, 0.5 / 3, 0.75])


def _probabilities(root, out) -> None:
    """Probabilities of every raw frame of sequence 02: high inside its GT nuclei, low outside, and an
    uncertain band around them."""
    for f in range(6):
        gt = ctc.read_labels(ctc.gt_seg_path(root, SYNTH, "02", f))
        fg = true_foreground(gt)
        band = ndimage.binary_dilation(fg, iterations=2) & ~fg
        prob = np.where(fg, 0.95, np.where(band, 0.5, 0.05)).astype(np.float32)
        write_foreground(foreground_path(out, SYNTH, "02", f), prob)


def _dm(root, **kw) -> CTCDataModule:
    args = dict(root=root, dataset=SYNTH, splits=SPLITS, crop_size=32, batch_size=4, samples_per_epoch=64,
                train_mode="labeled", label_frames=1, max_instances=5)
    dm = CTCDataModule(**{**args, **kw})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_pseudo_labeled_frames_join_the_labeled_crops(synthetic_root, tmp_path) -> None:
    _probabilities(synthetic_root, tmp_path / "fg")
    plain = _dm(synthetic_root)
    dm = _dm(synthetic_root, pseudo={"dir": str(tmp_path / "fg"), "share": 0.8})
    ds = dm._train
    assert len(ds.images) == len(plain._train.images) + 6
    assert ds.p[-6:].sum() == pytest.approx(0.8) and ds.p[:-6].sum() == pytest.approx(0.2)
    gt = ctc.read_labels(ctc.gt_seg_path(synthetic_root, SYNTH, "02", 0))
    lab = ds.labels[-6]
    assert set(np.unique(lab)) == {-1, 0, 1}
    np.testing.assert_array_equal(lab == 1, true_foreground(gt))
    batch = next(iter(dm.train_dataloader()))
    assert (batch["labels"] == IGNORE).any()  # the uncertain band reaches the loss as ignored
    assert dm.n_train_instances == plain.n_train_instances  # the budget still counts only real labels


def test_missing_or_misused_pseudo_labels_are_clear_errors(synthetic_root, tmp_path) -> None:
    _probabilities(synthetic_root, tmp_path / "fg")
    foreground_path(tmp_path / "fg", SYNTH, "02", 3).unlink()
    with pytest.raises(InputError, match="fg003.tif.*task=foreground with task.split=raw"):
        _dm(synthetic_root, pseudo={"dir": str(tmp_path / "fg")})
    with pytest.raises(ValueError, match="needs data.train_mode=labeled"):
        _dm(synthetic_root, train_mode="raw", pseudo={"dir": str(tmp_path / "fg")})


def test_fgnet_trains_with_pseudo_labels_from_the_config(compose, tmp_path, synthetic_root) -> None:
    from inpaintaff.train import train

    _probabilities(synthetic_root, tmp_path / "fg")
    cfg = compose("train", [
        "model=fgnet", "model.depth=3", "model.base_features=8", "model.max_features=16", "data.train_mode=labeled",
        "data.label_frames=1", "data.max_instances=5", f"data.pseudo.dir={tmp_path / 'fg'}", "data.pseudo.share=0.7",
        "data.splits.raw=[{seq: '02', frames: null}]", "data.crop_size=64", "data.batch_size=2",
        "trainer.fast_dev_run=true", "trainer.accelerator=cpu"])
    out = train(cfg)
    assert np.isfinite(out["metrics"]["train/loss_step"])
