"""The IGM split engine with the analytic (Gaussian) inpainter on small synthetic patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from inpaintaff.igm.inpainters import GaussianInpainter
from inpaintaff.igm.split import (
    CPU_CHUNK,
    EngineConfig,
    SplitEngine,
    _Pool,
    ancestors_at,
    d_schedule,
)
from inpaintaff.utils.errors import InputError

H = W = 64
YY, XX = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
# Settings under which the Gaussian inpainter finds flat regions (see the report: the
# inpainter's reach must exceed the band so that both sides are consulted).
FLAT = dict(iterations=40, d0=4, min_region=20)


def _scenes() -> dict[str, torch.Tensor]:
    disk = torch.zeros(H, W, dtype=torch.long)
    disk[(YY - 30) ** 2 + (XX - 36) ** 2 < 15**2] = 1
    three = torch.zeros(H, W, dtype=torch.long)
    three[(YY - 30) ** 2 + (XX - 38) ** 2 < 14**2] = 1
    three[XX < 12] = 2
    return {"disk": disk, "three": three}


def _render(gt: torch.Tensor, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    values = torch.tensor([0.1, 0.9, 0.5])
    g = torch.Generator().manual_seed(seed)
    return (values[gt] + noise * torch.randn(gt.shape, generator=g))[None, None]


def igm_n(rig: torch.Tensor, M: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
    """IGM_N (paper eq. 8) per region: sum of RIG over M∩N minus sum over (not M)∩N."""
    sign = torch.where(M, 1.0, -1.0)
    return (rig * sign * N).flatten(1).sum(1)


def _min_best_iou(gt: torch.Tensor, leaves: torch.Tensor) -> float:
    """Over true regions, the IoU of the best-matching leaf; the worst region counts."""
    worst = 1.0
    for g in gt.unique():
        G = gt == g
        best = max(((G & (leaves == lab)).sum() / (G | (leaves == lab)).sum()).item() for lab in leaves[G].unique())
        worst = min(worst, best)
    return worst


@pytest.mark.parametrize("scene", ["disk", "three"])
def test_flat_regions_are_found(scene: str) -> None:
    gt = _scenes()[scene]
    seeds = [0, 1, 2, 3]
    engine = SplitEngine(GaussianInpainter(sigma=6.0), **FLAT)
    res = engine.run(_render(gt).repeat(len(seeds), 1, 1, 1), seeds)
    for p in range(len(seeds)):
        assert _min_best_iou(gt, res.leaf_ids[p]) >= 0.95, f"seed {seeds[p]}"
    assert (res.stats["leaves"] == len(gt.unique())).all()


def test_textured_regions_are_found_with_contrast_rule() -> None:
    gt = _scenes()["disk"]
    seeds = [0, 1, 2, 3]
    engine = SplitEngine(GaussianInpainter(sigma=6.0), stop_rule="contrast", stop_threshold=0.3, **FLAT)
    images = torch.cat([_render(gt, noise=0.05, seed=s) for s in seeds])
    res = engine.run(images, seeds)
    for p in range(len(seeds)):
        assert _min_best_iou(gt, res.leaf_ids[p]) >= 0.95, f"seed {seeds[p]}"


def test_uniform_image_gives_one_leaf() -> None:
    image = torch.full((2, 1, 48, 48), 0.3)
    res = SplitEngine(GaussianInpainter(2.0), iterations=20, d0=8).run(image, [5, 6])
    assert (res.leaf_ids == 1).all()
    assert res.stats["splits"].tolist() == [1, 1]
    assert res.stats["emptied"].tolist() == [1, 1]


def test_igm_n_does_not_rise_across_an_update() -> None:
    gt = _scenes()["three"]
    image = _render(gt, noise=0.05)
    engine = SplitEngine(GaussianInpainter(4.0), iterations=10, d0=4)
    R = torch.ones((1, 1, H, W), dtype=torch.bool)
    M = torch.zeros_like(R)
    M[..., :, : W // 2 + 3] = True
    zeros = torch.zeros(1, dtype=torch.long)
    one = torch.ones(1, dtype=torch.long)
    pool = _Pool(R, M, zeros, one, zeros.clone(), zeros.clone(), torch.zeros(1), torch.zeros(1))
    decreased = False
    for t in range(10):
        pool.t = torch.tensor([t])
        new_M, rig, N, _ = engine.step(image, pool)
        before, after = igm_n(rig, pool.M, N), igm_n(rig, new_M, N)
        assert after <= before + 1e-6
        decreased |= bool(after < before - 1e-6)
        # The paper's printed sign (RIG > 0 -> M) would raise it: the test can tell the two apart.
        paper = (pool.M & ~N) | (N & (rig > 0))
        if (rig.abs() * N).sum() > 0:
            assert igm_n(rig, paper, N) > after
        pool.M = new_M
    assert decreased


def test_batched_and_faithful_give_the_same_splits() -> None:
    gt = _scenes()["three"]
    seeds = [11, 12, 13]
    images = torch.cat([_render(gt, noise=0.05, seed=s) for s in seeds])
    settings = dict(iterations=6, d0=4, min_region=60, max_depth=3)
    batched = SplitEngine(GaussianInpainter(4.0), mode="batched", early_stop=False, **settings).run(images, seeds)
    faithful = SplitEngine(GaussianInpainter(4.0), mode="faithful", **settings).run(images, seeds)
    assert (faithful.stats["splits"] > 1).all()  # recursion happened: a real comparison
    assert torch.equal(batched.leaf_ids, faithful.leaf_ids)
    for key in faithful.stats:
        assert torch.equal(batched.stats[key], faithful.stats[key]), key
    assert batched.conditionals == faithful.conditionals
    assert batched.forward_passes < faithful.forward_passes
    assert faithful.forward_passes == int(faithful.stats["steps"].sum())


def test_chunked_inpainting_gives_the_same_splits() -> None:
    gt = _scenes()["three"]
    images = torch.cat([_render(gt, noise=0.05, seed=s) for s in (1, 2)])
    settings = dict(iterations=6, d0=4, min_region=60, max_depth=3)
    whole = SplitEngine(GaussianInpainter(4.0), chunk=None, **settings).run(images, [1, 2])
    for chunking in ({"chunk": 3}, {"chunk": 5, "pad_chunks": True}, {"chunk": "auto"}):
        calls: list[int] = []

        def counted(image, known, calls=calls):
            calls.append(image.shape[0])
            return GaussianInpainter(4.0)(image, known)

        chunked = SplitEngine(counted, **chunking, **settings).run(images, [1, 2])
        assert torch.equal(whole.leaf_ids, chunked.leaf_ids), chunking
        assert whole.forward_passes == chunked.forward_passes
        if chunking.get("pad_chunks"):
            assert set(calls) == {5}  # one shape for a fixed-shape torch.compile
        elif chunking["chunk"] == "auto":
            assert max(calls) == CPU_CHUNK and min(calls) < CPU_CHUNK  # on a CPU, last calls of a pass are short
        else:
            assert max(calls) == 3


def test_engine_chunk_settings_are_checked() -> None:
    for bad in ({"chunk": 0}, {"chunk": "many"}, {"chunk": None, "pad_chunks": True},
                {"chunk": "auto", "pad_chunks": True}):
        with pytest.raises(ValueError, match="chunk"):
            EngineConfig(**bad)
    assert EngineConfig(chunk="auto").chunk_size(torch.device("cpu")) == CPU_CHUNK
    assert EngineConfig(chunk="auto").chunk_size(torch.device("cuda")) is None
    assert "chunk" not in EngineConfig().result_settings() and "pad_chunks" not in EngineConfig().result_settings()


def test_early_stop_saves_passes_and_keeps_flat_result() -> None:
    gt = _scenes()["disk"]
    engine = SplitEngine(GaussianInpainter(6.0), early_stop=True, **FLAT)
    res = engine.run(_render(gt), [0])
    full = SplitEngine(GaussianInpainter(6.0), early_stop=False, **FLAT).run(_render(gt), [0])
    assert res.forward_passes < full.forward_passes
    assert _min_best_iou(gt, res.leaf_ids[0]) >= 0.95


def test_d_schedule() -> None:
    # docs/method.md §3: d0 for the first half of the iterations, then falling linearly to 1;
    # every second iteration uses d = 1. Worked out by hand from the rule.
    assert d_schedule(20, 8) == [8, 1, 8, 1, 8, 1, 8, 1, 8, 1, 8, 1, 6, 1, 5, 1, 3, 1, 2, 1]
    assert d_schedule(12, 8) == [8, 1, 8, 1, 8, 1, 8, 1, 5, 1, 2, 1]
    assert d_schedule(3, 4) == [4, 1, 1]
    assert d_schedule(1, 8) == [8]


def _reference_initial_split(R: torch.Tensor, axis: int) -> torch.Tensor:
    """M⁰ by brute force: try every cut between rows (axis 0) or columns (1), keep the first one
    whose near part is closest to half of R; an axis that cannot cut R gives way to the other."""
    n = int(R.sum())
    for ax in (axis, 1 - axis):
        size = R.shape[ax]
        best, best_c = None, None
        for c in range(size - 1):
            near = R[: c + 1] if ax == 0 else R[:, : c + 1]
            k = int(near.sum())
            if 0 < k < n and (best is None or abs(k - n / 2) < best):
                best, best_c = abs(k - n / 2), c
        if best_c is not None:
            M = torch.zeros_like(R)
            if ax == 0:
                M[: best_c + 1] = R[: best_c + 1]
            else:
                M[:, : best_c + 1] = R[:, : best_c + 1]
            return M
    return torch.zeros_like(R)


def test_initial_split_matches_a_brute_force_reference() -> None:
    engine = SplitEngine(GaussianInpainter(2.0))
    g = torch.Generator().manual_seed(0)
    regions = []
    for _ in range(40):  # blobs of random smoothed noise, from thin to nearly full
        noise = torch.rand((1, 1, 20, 30), generator=g)
        level = float(torch.rand((), generator=g)) * 0.9 + 0.05
        regions.append(torch.nn.functional.avg_pool2d(noise, 3, 1, 1)[0, 0] > level)
    line = torch.zeros((20, 30), dtype=torch.bool)
    line[4, 3:20] = True  # cannot be cut between rows: must fall back to columns
    dot = torch.zeros((20, 30), dtype=torch.bool)
    dot[7, 7] = True  # cannot be cut at all
    column = torch.zeros((20, 30), dtype=torch.bool)
    column[2:18, 25] = True  # cannot be cut between columns: must fall back to rows
    regions += [line, column, dot, (YY[:20, :30] - 10) ** 2 + (XX[:20, :30] - 14) ** 2 < 64]
    R = torch.stack(regions)[:, None]
    for axis in (0, 1):
        axes = torch.full((len(regions),), axis)
        M = engine._initial_split(R, axes)
        for k, region in enumerate(regions):
            assert torch.equal(M[k, 0], _reference_initial_split(region, axis)), (axis, k)
    assert not engine._initial_split(R[-2:-1], torch.tensor([0])).any()  # the dot


def _check_hierarchy(res, max_depth: int, min_region: int) -> None:
    """Leaves that a faithful recursion gives: every pixel in exactly one leaf of a binary tree of
    heap ids, each with the reason it ended, and counters that agree with the leaves."""
    for p in range(res.leaf_ids.shape[0]):
        leaf = res.leaf_ids[p]
        ids = leaf.unique().tolist()
        assert min(ids) >= 1, "a pixel outside every leaf"
        assert res.stats["leaves"][p].item() == len(ids), "a leaf overwrote another"
        # A set of heap ids is the leaves of a full binary tree iff no id is another's ancestor
        # and the leaves' "area" (2^-depth) sums to one.
        depth = {i: i.bit_length() - 1 for i in ids}
        assert sum(2.0 ** -depth[i] for i in ids) == 1.0
        for i in ids:
            assert all(i >> (depth[i] - depth[j]) != j for j in ids if depth[j] < depth[i])
            assert depth[i] <= max_depth
        # Each successful split adds one leaf; an emptied or weak region ends as one leaf.
        s = {k: v[p].item() for k, v in res.stats.items()}
        ended = s["emptied"] + s["min_size"] + s["max_depth"] + s["weak"] + s["no_foreground"] + s["one_object"]
        assert ended == len(ids)
        assert len(ids) == 1 + s["splits"] - s["emptied"] - s["weak"]
        assert s["max_depth"] == sum(depth[i] == max_depth for i in ids if (leaf == i).sum() >= min_region)


def test_safeguards_end_splits_and_are_counted() -> None:
    gt = _scenes()["three"]
    image = _render(gt, noise=0.05)
    res = SplitEngine(GaussianInpainter(4.0), iterations=6, d0=4, max_depth=1).run(image, [0])
    assert res.stats["leaves"].item() == 2 and res.stats["splits"].item() == 1
    assert res.stats["max_depth"].item() == 2
    _check_hierarchy(res, max_depth=1, min_region=1)
    res = SplitEngine(GaussianInpainter(4.0), min_region=H * W + 1).run(image, [0])
    assert res.stats["min_size"].item() == 1 and res.stats["splits"].item() == 0
    assert res.forward_passes == 0 and (res.leaf_ids == 1).all()
    images = torch.cat([image, _render(gt, noise=0.05, seed=1)])
    deep = SplitEngine(GaussianInpainter(4.0), iterations=6, d0=4, max_depth=3, min_region=8).run(images, [0, 1])
    assert (deep.stats["leaves"] > 2).all()  # the recursion went below the first level
    _check_hierarchy(deep, max_depth=3, min_region=8)
    flat = SplitEngine(GaussianInpainter(sigma=6.0), **FLAT).run(_render(_scenes()["three"]).repeat(2, 1, 1, 1), [0, 1])
    _check_hierarchy(flat, max_depth=EngineConfig().max_depth, min_region=FLAT["min_region"])


def test_hierarchy_levels_from_heap_ids() -> None:
    leaf = torch.tensor([[[4, 5, 3, 13]]])
    assert ancestors_at(leaf, 0).tolist() == [[[1, 1, 1, 1]]]
    assert ancestors_at(leaf, 1).tolist() == [[[2, 2, 3, 3]]]
    assert ancestors_at(leaf, 2).tolist() == [[[4, 5, 3, 6]]]


def test_nan_patch_is_an_input_error() -> None:
    image = torch.zeros((1, 1, 32, 32))
    image[0, 0, 3, 3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        SplitEngine(GaussianInpainter(2.0)).run(image, [0])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="error"):
        EngineConfig(error="cubic")
    with pytest.raises(ValueError, match="mode"):
        EngineConfig(mode="fast")


def test_gaussian_inpainter_matches_normalised_convolution_and_falls_back_to_the_prior() -> None:
    g = torch.Generator().manual_seed(3)
    image = torch.rand((1, 1, 40, 40), generator=g)
    known = torch.zeros_like(image)
    known[..., 5:15, :6] = 1
    known[..., 30:, 20:25] = (torch.rand((1, 1, 10, 5), generator=g) > 0.3).float()
    out = GaussianInpainter(1.0)(image, known)[0, 0].numpy()
    # Reference: scipy's zero-padded Gaussian, truncated at 4 sigma as the inpainter's is.
    im, kn = image[0, 0].double().numpy(), known[0, 0].double().numpy()
    num = ndimage.gaussian_filter(im * kn, 1.0, mode="constant", truncate=4.0)
    den = ndimage.gaussian_filter(kn, 1.0, mode="constant", truncate=4.0)
    reach = den > 1e-12
    assert 0 < reach.sum() < reach.size  # both cases occur
    np.testing.assert_allclose(out[reach], (num / np.where(reach, den, 1))[reach], rtol=1e-4, atol=1e-5)
    # Beyond the kernel's reach of every known pixel: the mean of the known pixels.
    np.testing.assert_allclose(out[~reach], (im * kn).sum() / kn.sum(), rtol=1e-5)
    assert torch.equal(GaussianInpainter(1.0)(image, torch.zeros_like(image)), torch.zeros_like(image))
    with pytest.raises(ValueError):
        GaussianInpainter(0.0)


def _blobs_scene() -> tuple[torch.Tensor, np.ndarray]:
    """Two bright discs and a dim background band: a patch, and its foreground (the discs)."""
    gt = torch.zeros(H, W, dtype=torch.long)
    gt[(YY - 20) ** 2 + (XX - 20) ** 2 < 9**2] = 1
    gt[(YY - 44) ** 2 + (XX - 44) ** 2 < 9**2] = 1
    gt[:, 58:] = 2
    return _render(gt, noise=0.05), (gt == 1).numpy()


def test_regions_without_foreground_become_leaves_and_foreground_leaves_stay_the_same() -> None:
    image, fg = _blobs_scene()
    images = torch.cat([image, _render(_scenes()["three"], noise=0.05, seed=2)])
    fgs = np.stack([fg, _scenes()["three"].numpy() == 1])
    settings = dict(iterations=6, d0=4, max_depth=3, min_region=8)
    plain = SplitEngine(GaussianInpainter(4.0), **settings).run(images, [5, 6])
    ruled = SplitEngine(GaussianInpainter(4.0), **settings, region_min_fg=1).run(images, [5, 6], foreground=fgs)
    assert ruled.stats["no_foreground"].sum() > 0
    assert ruled.conditionals < plain.conditionals
    # Only regions without a foreground pixel were left unsplit: on the foreground the leaves agree.
    for p in range(2):
        assert torch.equal(ruled.leaf_ids[p][torch.from_numpy(fgs[p])], plain.leaf_ids[p][torch.from_numpy(fgs[p])])
    _check_hierarchy(ruled, max_depth=3, min_region=8)


def test_a_region_holding_one_small_object_is_not_split() -> None:
    image, fg = _blobs_scene()
    one = fg.copy()
    one[:, 32:] = False  # only the first disc is foreground
    area = int(one.sum())
    engine = SplitEngine(GaussianInpainter(4.0), iterations=6, d0=4, one_object_px=area)
    res = engine.run(image.repeat(2, 1, 1, 1), [1, 1], foreground=np.stack([one, fg]))
    assert res.stats["one_object"].tolist()[0] == 1 and (res.leaf_ids[0] == 1).all()  # the whole patch, unsplit
    assert res.stats["splits"][1] > 0  # two objects: split as usual
    small = SplitEngine(GaussianInpainter(4.0), iterations=6, d0=4, one_object_px=area - 1)
    assert small.run(image, [1], foreground=one[None]).stats["one_object"].item() == 0  # larger than the limit


def test_region_rules_need_a_matching_foreground() -> None:
    image, fg = _blobs_scene()
    with pytest.raises(ValueError, match="foreground"):
        SplitEngine(GaussianInpainter(4.0), region_min_fg=1).run(image, [0])
    with pytest.raises(InputError, match="does not match"):
        SplitEngine(GaussianInpainter(4.0), region_min_fg=1).run(image, [0], foreground=fg[None, :32])
    with pytest.raises(ValueError, match="region_min_fg"):
        EngineConfig(region_min_fg=-1)
    # Off (the default), the foreground is not read.
    assert SplitEngine(GaussianInpainter(4.0), iterations=2).run(image, [0], foreground=fg[None, :32]).stats


def test_engine_defaults_in_python_are_the_yaml_defaults(compose):
    """EngineConfig keeps defaults for the array-in, array-out engine (``SplitEngine(inpainter)``);
    they must be the ones ``task=inpaintaff`` runs with, written in conf/task/inpaintaff.yaml."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    yaml_engine = OmegaConf.to_container(compose("predict", ["task=inpaintaff"]).task.engine, resolve=True)
    python = asdict(EngineConfig())
    assert set(yaml_engine) == set(python)
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in python.items()} == yaml_engine
