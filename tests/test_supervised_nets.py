"""FGNET and AFFNET: the pix2pix generator, the Dice loss and training on labeled crops."""

from __future__ import annotations

import pytest
import torch

from inpaintaff.losses.dice import dice_loss
from inpaintaff.modules.affnet import AffNetModule
from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.nets.pix2pix import Pix2PixUNet
from inpaintaff.train import train


def test_pix2pix_any_size_and_depth():
    net = Pix2PixUNet(1, 3, depth=3, base_features=4, max_features=8).eval()
    assert net(torch.rand(2, 1, 37, 50)).shape == (2, 3, 37, 50)
    full = Pix2PixUNet(1, 12, depth=6, base_features=64)
    n_params = sum(p.numel() for p in full.parameters())
    assert 20e6 < n_params < 60e6  # the paper's FGNET/AFFNET size


def test_dice_loss_cases():
    t = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert float(dice_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(1 - t, t)) == pytest.approx(1.0, abs=1e-6)
    half = torch.full_like(t, 0.5)
    # 2*Σ(0.5*t) / (Σ0.25 + Σt²) = 2*1 / (1 + 2)
    assert float(dice_loss(half, t)) == pytest.approx(1 - 2 / 3, abs=1e-6)
    valid = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert float(dice_loss(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]), t, valid)) == pytest.approx(0.0, abs=1e-6)


def _labeled_batch() -> dict:
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 32, 32, dtype=torch.int64)
    labels[:, 4:14, 4:14] = 1
    labels[:, 14:28, 6:20] = 2
    labels[:, 18:30, 20:31] = 3
    labels[0, :, -4:] = -1  # padded pixels are ignored
    image = (labels > 0).float()[:, None] * 0.8 + 0.05 * torch.randn(4, 1, 32, 32, generator=g)
    return {"image": image, "labels": labels}


@pytest.mark.parametrize("cls", [FGNetModule, AffNetModule])
def test_few_steps_lower_the_loss(cls):
    torch.manual_seed(0)
    module = cls(depth=3, base_features=8, max_features=16, dropout=0.0, lr=1e-2)
    batch = _labeled_batch()
    opt = module.configure_optimizers()
    first = None
    for _ in range(15):
        loss = module.loss(module(batch["image"]), batch["labels"])
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        last = float(module.loss(module(batch["image"]), batch["labels"]))
    assert last < 0.7 * first
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", ["fgnet", "affnet"])
def test_train_entry_fast_dev_run(compose, model):
    cfg = compose("train", [
        f"model={model}", "model.depth=3", "model.base_features=8", "model.max_features=16",
        "data.train_mode=labeled", "data.max_instances=20", "data.crop_size=64", "data.batch_size=2",
        "trainer.fast_dev_run=true", "trainer.accelerator=cpu",
    ])
    out = train(cfg)
    assert out["metrics"]["train/loss_step"] >= 0


@pytest.mark.parametrize("model", ["fgnet_cpu", "affnet_cpu"])
def test_supervised_model_on_raw_crops_says_to_set_labeled(compose, model):
    cfg = compose("train", [f"model={model}", "trainer.fast_dev_run=true", "trainer.accelerator=cpu"])
    assert cfg.data.train_mode == "raw"
    with pytest.raises(ValueError, match=r"trains on labeled crops: set data\.train_mode=labeled"):
        train(cfg)


def test_fgnet_target_is_truefg_and_edges_weigh_more():
    """FGNET learns TRUEFG (one-pixel gaps between two nuclei closed); boundary_weight raises the loss
    of errors at the edge only."""
    import numpy as np

    from inpaintaff.modules.fgnet import foreground_target, near_edges
    from inpaintaff.segment.foreground import true_foreground

    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 4, (19, 23)) * (rng.random((19, 23)) > 0.4)
        ours = foreground_target(torch.from_numpy(labels)[None])[0, 0].numpy() > 0
        np.testing.assert_array_equal(ours, true_foreground(labels))
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, 8:24, 8:24] = 1
    edge = near_edges(foreground_target(labels))[0, 0]
    assert edge[16, 16] == 0 and edge[0, 0] == 0 and edge[8, 16] == 1 and edge[6, 16] == 1
    wrong_inside = torch.full((1, 1, 32, 32), -5.0)
    wrong_inside[:, :, 8:24, 8:24] = 5.0
    wrong_inside[:, :, 16, 16] = -5.0  # one error far from the edge
    wrong_edge = wrong_inside.clone()
    wrong_edge[:, :, 16, 16] = 5.0
    wrong_edge[:, :, 8, 16] = -5.0  # the same error on the edge
    plain, weighted = FGNetModule(depth=2, base_features=4), FGNetModule(depth=2, base_features=4, boundary_weight=4)
    assert plain.loss(wrong_inside, labels) == pytest.approx(plain.loss(wrong_edge, labels))
    assert weighted.loss(wrong_edge, labels) > weighted.loss(wrong_inside, labels)


def test_fgnet_dice_weight_adds_the_soft_dice_of_the_foreground():
    """dice_weight adds that many times 1 - soft Dice to BCE: nothing for a perfect foreground, nearly
    its weight for an empty one; a negative weight is refused."""
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 4:12, 4:12] = 1
    perfect = torch.full((2, 1, 16, 16), -20.0)
    perfect[:, :, 4:12, 4:12] = 20.0
    empty = torch.full((2, 1, 16, 16), -20.0)
    plain, dice = FGNetModule(depth=2, base_features=4), FGNetModule(depth=2, base_features=4, dice_weight=2.0)
    assert float(dice.loss(perfect, labels)) == pytest.approx(float(plain.loss(perfect, labels)), abs=1e-3)
    assert float(dice.loss(empty, labels) - plain.loss(empty, labels)) == pytest.approx(2.0, abs=0.02)
    with pytest.raises(ValueError, match="dice_weight"):
        FGNetModule(depth=2, base_features=4, dice_weight=-1.0)


def test_a_net_starts_from_another_checkpoints_matching_weights(tmp_path):
    """model.init_from: every weight of the same name and shape is copied (all but the output layer of
    another width); another architecture or a missing file is an error naming the file."""
    from inpaintaff.utils.errors import InputError

    student = AffNetModule(depth=3, base_features=4, max_features=8)
    path = tmp_path / "student.ckpt"
    torch.save({"state_dict": student.state_dict()}, path)
    fgnet = FGNetModule(depth=3, base_features=4, max_features=8, init_from=str(path))
    own, theirs = fgnet.state_dict(), student.state_dict()
    same = [k for k in own if own[k].shape == theirs[k].shape]
    assert len(same) == len(own) - 2  # the head's weight and bias differ in width
    assert all(torch.equal(own[k], theirs[k]) for k in same)
    assert "init_from" not in fgnet.hparams  # a path of this machine; training records its content
    with pytest.raises(InputError, match="same architecture"):
        FGNetModule(depth=4, base_features=8, max_features=16, init_from=str(path))
    with pytest.raises(InputError, match="not found"):
        FGNetModule(depth=3, base_features=4, max_features=8, init_from=str(tmp_path / "none.ckpt"))


@pytest.mark.parametrize("which, changed", [("head", {"net.head"}), ("decoder", {"net.head", "net.up"})])
def test_train_layers_keeps_the_started_layers_and_their_statistics(tmp_path, which, changed):
    """model.train_layers: a training step changes only the chosen layers; the kept ones keep their
    weights and batch-norm statistics (eval mode), so with ``head`` the net shares the student's
    features."""
    student = AffNetModule(depth=3, base_features=4, max_features=8)
    path = tmp_path / "student.ckpt"
    torch.save({"state_dict": student.state_dict()}, path)
    fgnet = FGNetModule(depth=3, base_features=4, max_features=8, dropout=0.5, init_from=str(path),
                        train_layers=which)
    fgnet.train()
    before = {k: v.clone() for k, v in fgnet.state_dict().items()}
    optimizer = fgnet.configure_optimizers()
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 4:10, 4:10] = 1
    for _ in range(2):
        optimizer.zero_grad()
        fgnet.loss(fgnet(torch.rand(2, 1, 16, 16)), labels).backward()
        optimizer.step()
    moved = {".".join(k.split(".")[:2]) for k, v in fgnet.state_dict().items() if not torch.equal(v, before[k])}
    assert moved == changed
    assert not fgnet.net.down.training and fgnet.net.head.training
    fgnet.setup("fit")
    unstarted = FGNetModule(depth=3, base_features=4, max_features=8, train_layers=which)
    unstarted.setup("predict")  # a trained checkpoint loads without init_from
    with pytest.raises(ValueError, match="needs model.init_from"):
        unstarted.setup("fit")
    with pytest.raises(ValueError, match="train_layers"):
        FGNetModule(depth=3, base_features=4, max_features=8, init_from=str(path), train_layers="encoder")


def test_augmentation_moves_labels_with_the_image_and_keeps_brightness_in_range():
    import numpy as np

    from inpaintaff.data.augment import Augment

    rng = np.random.default_rng(1)
    image = rng.random((16, 16)).astype(np.float32)
    labels = np.arange(256).reshape(16, 16)
    flips = Augment(flips=True)
    seen = set()
    for _ in range(40):
        im, lab = flips(image, labels, rng)
        np.testing.assert_array_equal(im.ravel()[np.argsort(lab.ravel())], image.ravel())  # moved alike
        seen.add(lab.tobytes())
    assert len(seen) == 8  # every flip and quarter turn
    bright = Augment(contrast=0.3, brightness=0.1, field=0.3)
    ones = np.ones((32, 32), np.float32)
    outs = [bright(ones, None, rng)[0] for _ in range(50)]
    assert all(0.39 - 1e-6 <= o.min() and o.max() <= 1.79 + 1e-6 for o in outs)  # 0.7·0.7−0.1, 1.3·1.3+0.1
    assert np.std([o.mean() for o in outs]) > 0.05 and max(o.std() for o in outs) > 0.01  # varies across crops
    with pytest.raises(ValueError, match="data.augment.contrast"):
        Augment(contrast=1.5)


def test_dim_and_gamma_augmentation_change_nuclei_not_background():
    import numpy as np

    from inpaintaff.data.augment import Augment, dim_instances

    rng = np.random.default_rng(2)
    labels = np.zeros((40, 40), np.int64)
    labels[5:15, 5:15], labels[25:35, 25:35] = 1, 2
    image = np.where(labels > 0, 1.0, 0.1).astype(np.float32)
    dimmed = dim_instances(image, labels, 0.8, rng)
    inner = [float(dimmed[8:12, 8:12].mean()), float(dimmed[28:32, 28:32].mean())]
    assert all(0.1 + 0.9 * 0.2 - 1e-4 <= v <= 1.0 + 1e-6 for v in inner)  # contrast times U(0.2, 1)
    assert abs(inner[0] - inner[1]) > 1e-3  # each nucleus its own factor
    np.testing.assert_allclose(dimmed[labels == 0][:50], 0.1, atol=1e-6)  # background far from nuclei kept
    assert dimmed[labels == 0].max() < 0.11 + 1e-6  # the fade stays within the background's range
    out, lab = Augment(dim=0.5, gamma=0.5)(image, labels, rng)
    np.testing.assert_array_equal(lab, labels)
    assert out.shape == image.shape and np.isfinite(out).all()
    with pytest.raises(ValueError, match="data.augment.dim"):
        Augment(dim=1.0)


def test_flips_average_undoes_each_transform():
    from inpaintaff.utils.tiling import with_flips

    x = torch.rand(2, 1, 16, 24)
    torch.testing.assert_close(with_flips(lambda t: t * 2)(x), x * 2)
    # a left-right flip seen through the 8 transforms is a left-right flip or (turned) an up-down one
    torch.testing.assert_close(with_flips(lambda t: t.flip(-1))(x), (x.flip(-1) + x.flip(-2)) / 2)
