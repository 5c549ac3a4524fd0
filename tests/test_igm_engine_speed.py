"""The faster engine gives the frozen engine's leaves; its filters equal their direct definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks import reference_engine
from inpaintaff.igm.filters import dilate_disk, gaussian_blur, gaussian_blur_multi, smooth_on_band
from inpaintaff.igm.inpainters import GaussianInpainter, NetInpainter
from inpaintaff.igm.split import EngineConfig, SplitEngine, mix_seed
from inpaintaff.modules.inpainting import InpaintingModule
from inpaintaff.tasks.inpaintaff.patches import foreground_skip_spec, patch_counts


def _disk_conv(mask: torch.Tensor, r: int) -> torch.Tensor:
    """Dilation by the disk as a convolution: the definition the fast version must meet."""
    ax = torch.arange(-r, r + 1, dtype=torch.float32)
    disk = ((ax[:, None] ** 2 + ax[None, :] ** 2) <= r * r).float()[None, None]
    return F.conv2d(mask.float(), disk, padding=r) > 0.5


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8, 13])
def test_disk_dilation_equals_the_convolution(radius: int) -> None:
    g = torch.Generator().manual_seed(radius)
    for p in (0.995, 0.9, 0.5):
        mask = torch.rand((6, 1, 29, 41), generator=g) > p
        assert torch.equal(dilate_disk(mask, radius), _disk_conv(mask, radius))


def _smooth_direct(e: torch.Tensor, band: torch.Tensor, sigmas) -> torch.Tensor:
    """e + Σ_σ G_σ*(eN) / G_σ*N on N, every σ blurred over the whole image (no boxes, no shortcuts)."""
    nf = band.float()
    out = e * nf
    for s in sigmas:
        num, den = gaussian_blur(e * nf, s), gaussian_blur(nf, s)
        out = out + torch.where(den > 1e-12, num / den.clamp_min(1e-12), 0.0)
    return out * nf


def test_band_smoothing_in_boxes_equals_the_whole_image_blur() -> None:
    g = torch.Generator().manual_seed(0)
    e = torch.rand((5, 1, 64, 64), generator=g)
    band = torch.zeros((5, 1, 64, 64), dtype=torch.bool)
    band[0, 0, :, 20:37] = True  # a vertical band
    band[1, 0, 40:45, 3:30] = True  # a short horizontal one
    band[2] = torch.rand((1, 64, 64), generator=g) > 0.9  # scattered
    band[3, 0, 60:, 60:] = True  # in a corner
    sigmas = (0.1, 1.0, 5.0, 10.0)
    fast = smooth_on_band(e, band, sigmas)
    assert torch.allclose(fast, _smooth_direct(e, band, sigmas), rtol=1e-5, atol=1e-6)
    assert (fast[4] == 0).all() and (fast[~band] == 0).all()  # region 4 has no band


def test_blur_of_several_sigmas_equals_one_at_a_time() -> None:
    x = torch.rand((3, 2, 20, 33), generator=torch.Generator().manual_seed(1))
    many = gaussian_blur_multi(x, (1.0, 4.0))
    for i, s in enumerate((1.0, 4.0)):
        radius = math.ceil(4 * s)
        k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / s) ** 2)
        k = (k / k.sum()).float()
        rows = F.conv2d(x.reshape(-1, 1, 20, 33), k.view(1, 1, -1, 1), padding=(radius, 0))
        ref = F.conv2d(rows, k.view(1, 1, 1, -1), padding=(0, radius)).reshape(x.shape)
        assert torch.allclose(many[i], ref, atol=1e-5)


def _hela_like_patches(n: int = 6) -> tuple[torch.Tensor, list[int]]:
    """Touching bright blobs on a dark noisy background, a different scene per patch."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48]
    patches = []
    for _ in range(n):
        img = 0.05 + 0.02 * rng.standard_normal((48, 48))
        for _ in range(3):
            cy, cx, r, v = rng.uniform(8, 40), rng.uniform(8, 40), rng.uniform(6, 12), rng.uniform(0.4, 0.9)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = v
        patches.append(img)
    seeds = [mix_seed(7, i) for i in range(n)]
    return torch.from_numpy(np.stack(patches)).float()[:, None], seeds


SETTINGS = dict(iterations=8, d0=4, min_region=30, max_depth=3, patience=2)  # the frozen defaults differ


@pytest.mark.parametrize("early_stop", [True, False])
def test_leaves_equal_the_frozen_engine_with_the_analytic_inpainter(early_stop: bool) -> None:
    patches, seeds = _hela_like_patches()
    inpainter = GaussianInpainter(3.0)
    old = reference_engine.SplitEngine(inpainter, early_stop=early_stop, **SETTINGS).run(patches, seeds)
    new = SplitEngine(inpainter, early_stop=early_stop, **SETTINGS).run(patches, seeds)
    assert (old.stats["splits"] > 1).sum() >= 3  # the patches really split, more than once
    assert torch.equal(new.leaf_ids, old.leaf_ids)
    assert new.conditionals == old.conditionals and new.forward_passes == old.forward_passes
    for key in old.stats:
        assert torch.equal(new.stats[key], old.stats[key]), key


def test_max_regions_changes_nothing_but_the_batching() -> None:
    patches, seeds = _hela_like_patches()
    inpainter = GaussianInpainter(3.0)
    wide = SplitEngine(inpainter, **SETTINGS).run(patches, seeds)
    narrow = SplitEngine(inpainter, max_regions=2, **SETTINGS).run(patches, seeds)
    assert (wide.stats["splits"] > 1).sum() >= 3
    assert narrow.forward_passes > wide.forward_passes  # it really advanced fewer regions at once
    assert torch.equal(narrow.leaf_ids, wide.leaf_ids)
    assert "max_regions" not in EngineConfig().result_settings()


def test_leaves_equal_the_frozen_engine_with_a_net() -> None:
    torch.manual_seed(0)
    net = NetInpainter(InpaintingModule(widths=[8, 16, 16], kernel_sizes=[5, 3, 3], feature_extractor="none"))
    patches, seeds = _hela_like_patches(4)
    old = reference_engine.SplitEngine(net, **SETTINGS).run(patches, seeds)
    new = SplitEngine(net, **SETTINGS).run(patches, seeds)
    assert old.stats["splits"].sum() > len(seeds)
    assert torch.equal(new.leaf_ids, old.leaf_ids)


def test_bf16_precision_runs_the_inpainter_in_bf16_on_cpu() -> None:
    seen = []

    def spy(image, known):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return GaussianInpainter(3.0)(image, known)

    patches, seeds = _hela_like_patches(2)
    SplitEngine(spy, precision="bf16", **SETTINGS).run(patches, seeds)
    assert seen and set(seen) == {torch.bfloat16}
    seen.clear()
    SplitEngine(spy, **SETTINGS).run(patches, seeds)  # the default: float32
    assert set(seen) == {None}
    SplitEngine(spy, precision="auto", **SETTINGS).run(patches, seeds)  # auto: float32 on the CPU
    assert set(seen) == {None}
    with pytest.raises(ValueError, match="precision"):
        EngineConfig(precision="fp8")


def test_float32_is_exact_unless_tf32_is_asked_for(monkeypatch) -> None:
    """precision "32" forbids TensorFloat-32 in the inpainter's convolutions and products (on a GPU
    it changed 28 % of a crop's affinities against the CPU's); "tf32" allows it there; the
    engine's own smoothing (matrix products) is exact either way; the process's own setting is
    left as it was."""
    import inpaintaff.igm.split as split_module

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    seen, smoothing = [], []
    smooth = split_module.smooth_on_band

    def spy(image, known):
        seen.append((conv.fp32_precision, matmul.fp32_precision))
        return GaussianInpainter(3.0)(image, known)

    def smooth_spy(*args, **kwargs):
        smoothing.append(matmul.fp32_precision)
        return smooth(*args, **kwargs)

    monkeypatch.setattr(split_module, "smooth_on_band", smooth_spy)

    patches, seeds = _hela_like_patches(2)
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32"  # as a user's script might set it
    try:
        exact = SplitEngine(spy, **SETTINGS).run(patches, seeds)
        assert seen and set(seen) == {("ieee", "ieee")}
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
        seen.clear()
        tf32 = SplitEngine(spy, precision="tf32", **SETTINGS).run(patches, seeds)
        assert seen and set(seen) == {("tf32", "tf32")}
        assert smoothing and set(smoothing) == {"ieee"}
    finally:
        conv.fp32_precision, matmul.fp32_precision = before
    assert torch.equal(tf32.leaf_ids, exact.leaf_ids)  # on a CPU the flags change nothing
    assert (conv.fp32_precision, matmul.fp32_precision) == before


def test_patch_counts_and_skip_spec() -> None:
    mask = np.zeros((10, 12), dtype=bool)
    mask[2, 3] = mask[8, 11] = True
    counts = patch_counts(mask, [(0, 0), (5, 7), (0, 6), (4, 2)], 5)
    assert counts.tolist() == [1, 1, 0, 0]
    assert foreground_skip_spec("gt")["source"] == "truefg"
    assert foreground_skip_spec({"source": "file", "dir": "d"}) == foreground_skip_spec({"source": "dir", "dir": "d"})
    with pytest.raises(ValueError, match="source"):
        foreground_skip_spec("all")  # would skip nothing
    assert foreground_skip_spec(None) == foreground_skip_spec({"source": None})
    with pytest.raises(ValueError, match="dir"):
        foreground_skip_spec({"source": "dir"})
    with pytest.raises(ValueError, match="source"):
        foreground_skip_spec("otsu")
    assert foreground_skip_spec({"source": ["gt", "intensity"]})["source"] == ["truefg", "intensity"]
    for bad in (["truefg", None], ["truefg", "otsu"], [], [{"threshold": 0.5}]):
        with pytest.raises(ValueError, match="source"):
            foreground_skip_spec({"source": bad})
    with pytest.raises(ValueError, match="dir"):
        foreground_skip_spec({"source": ["truefg", "dir"]})
