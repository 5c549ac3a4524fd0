"""Mutex watershed: conventions, exactness on affinities of a known labelling, errors."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintaff.offsets import N_ATTRACTIVE, OFFSETS, affinities_from_labels
from inpaintaff.segment.baselines import connected_components
from inpaintaff.segment.mws import (
    affogato_available,
    edge_mask,
    mutex_watershed,
    mws_weights,
)
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_consecutive, relabel_with_ids


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labellings are equal up to renaming of labels (0 kept as 0)."""
    if a.shape != b.shape or not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def touching_blobs(shape=(64, 80), seed=0) -> np.ndarray:
    """A few touching rectangles and discs on background."""
    lab = np.zeros(shape, dtype=np.int64)
    lab[8:40, 6:30] = 1
    lab[8:40, 30:52] = 2  # touches 1 along a straight line
    lab[40:58, 10:45] = 3  # touches 1 and 2
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab[(yy - 30) ** 2 + (xx - 66) ** 2 < 100] = 4  # apart from the others
    return lab


def noisy(aff: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(aff + rng.normal(0, sigma, aff.shape).astype(np.float32), 0, 1)


def test_sign_convention_two_touching_objects():
    """High attractive weight = merge, high repulsive weight = keep apart (affogato's convention)."""
    lab = np.zeros((30, 40), dtype=np.int64)
    lab[5:25, 5:20], lab[5:25, 20:35] = 1, 2
    aff, valid = affinities_from_labels(lab)
    seg = mutex_watershed(aff, 0.5, foreground=lab > 0, valid=valid)
    assert same_partition(seg, lab)
    # The inverted convention (repulsive weight = alpha * aff) merges the two objects.
    w = mws_weights(aff, 0.5)
    np.testing.assert_array_equal(w[:N_ATTRACTIVE], aff[:N_ATTRACTIVE])
    np.testing.assert_allclose(w[N_ATTRACTIVE:], 0.5 * (1 - aff[N_ATTRACTIVE:]))
    flipped = aff.copy()
    flipped[N_ATTRACTIVE:] = 1 - aff[N_ATTRACTIVE:]
    merged = mutex_watershed(flipped, 0.5, foreground=lab > 0, valid=valid)
    assert merged.max() == 1


@pytest.mark.parametrize("sigma,alpha", [(0.0, 0.5), (0.0, 0.1), (0.1, 0.5), (0.2, 0.7)])
def test_recovers_known_labelling(sigma, alpha):
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    seg = mutex_watershed(noisy(aff, sigma) if sigma else aff, alpha, foreground=lab > 0, valid=valid)
    assert same_partition(seg, lab)
    assert seg.dtype == np.int64
    assert set(np.unique(seg)) == set(range(seg.max() + 1))  # consecutive from 1, background 0


def test_without_foreground_background_is_a_segment():
    lab = touching_blobs()
    aff, _ = affinities_from_labels(lab)
    seg = mutex_watershed(aff, 0.5)
    assert same_partition(seg, lab + 1)


def test_alpha_zero_leaves_only_attractive_merges():
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    fg = lab > 0
    seg = mutex_watershed(aff, 0.0, foreground=fg, valid=valid)
    # Nothing forbids a merge: every connected piece of the foreground is one segment.
    assert same_partition(seg, connected_components(fg))
    assert seg.max() == 2 < lab.max()  # blobs 1-3 touch and merge; the disc stays apart


def test_foreground_restricts_result():
    lab = touching_blobs()
    aff, _ = affinities_from_labels(lab)
    fg = lab > 0
    fg[:, :20] = False
    seg = mutex_watershed(aff, 0.5, foreground=fg)
    assert (seg[~fg] == 0).all() and (seg[fg] > 0).all()
    assert same_partition(seg, np.where(fg, lab, 0))


def test_invalid_pairs_have_no_effect():
    """A repulsive edge marked invalid cannot split; an invalid attractive edge cannot merge."""
    lab = np.zeros((12, 30), dtype=np.int64)
    lab[2:10, 2:28] = 1
    aff, valid = affinities_from_labels(lab)
    # Fake a strong repulsion across the middle of the one object, on invalid pairs only.
    bad = aff.copy()
    bad[N_ATTRACTIVE:, :, 10:18] = 0.0
    valid2 = valid.copy()
    valid2[N_ATTRACTIVE:, :, 10:18] = False
    seg = mutex_watershed(bad, 1.0, foreground=lab > 0, valid=valid2)
    assert seg.max() == 1
    # Two touching objects whose boundary attractive edges are invalid and carry aff=1 stay apart.
    lab2 = np.zeros((12, 30), dtype=np.int64)
    lab2[2:10, 2:15], lab2[2:10, 15:28] = 1, 2
    aff2, valid2 = affinities_from_labels(lab2)
    boundary = (aff2[1] == 0) & (lab2 > 0)  # dx=-1 edges crossing 1|2
    aff2[1][boundary], valid2[1][boundary] = 1.0, False
    seg2 = mutex_watershed(aff2, 0.5, foreground=lab2 > 0, valid=valid2)
    assert same_partition(seg2, lab2)


def test_nan_on_invalid_pairs_is_ignored_but_on_valid_pairs_is_an_error():
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    aff[:, :5, :] = np.nan
    valid[:, :5, :] = False
    seg = mutex_watershed(aff, 0.5, foreground=lab > 0, valid=valid)
    assert same_partition(seg, lab)
    aff[3, 20, 20] = np.nan
    with pytest.raises(InputError, match="NaN"):
        mutex_watershed(aff, 0.5, foreground=lab > 0, valid=valid)


def test_strides_thin_out_repulsive_edges_only():
    shape = (len(OFFSETS), 40, 50)
    full = edge_mask(shape, OFFSETS)
    strided = edge_mask(shape, OFFSETS, strides=[2, 3])
    np.testing.assert_array_equal(strided[:N_ATTRACTIVE], full[:N_ATTRACTIVE])
    assert 0 < strided[N_ATTRACTIVE:].sum() < full[N_ATTRACTIVE:].sum() / 5
    r1 = edge_mask(shape, OFFSETS, strides=[2, 2], randomized_strides=True, seed=3)
    r2 = edge_mask(shape, OFFSETS, strides=[2, 2], randomized_strides=True, seed=3)
    np.testing.assert_array_equal(r1, r2)
    frac = r1[N_ATTRACTIVE:].sum() / full[N_ATTRACTIVE:].sum()
    assert 0.2 < frac < 0.3
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    seg = mutex_watershed(aff, 0.5, foreground=lab > 0, valid=valid, strides=[2, 2])
    assert same_partition(seg, lab)


def reference_mws(weights: np.ndarray, edges: np.ndarray, offsets, n_attractive: int) -> np.ndarray:
    """The mutex watershed by its definition (pure numpy): edges in descending weight; an attractive
    edge merges two clusters unless a mutex edge joins them, a repulsive edge adds a mutex edge."""
    h, w = weights.shape[1:]
    parent = list(range(h * w))
    mutex: list[set[int]] = [set() for _ in range(h * w)]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cs, ys, xs = np.nonzero(edges)
    order = np.argsort(-weights[cs, ys, xs], kind="stable")
    for c, y, x in zip(cs[order], ys[order], xs[order]):
        dy, dx = offsets[c]
        a, b = root(int(y * w + x)), root(int((y + dy) * w + x + dx))
        if a == b:
            continue
        if c < n_attractive:
            if b not in mutex[a]:
                parent[b] = a
                mutex[a] |= mutex[b]
                for m in mutex[b]:
                    mutex[m].discard(b)
                    mutex[m].add(a)
        else:
            mutex[a].add(b)
            mutex[b].add(a)
    return np.array([root(i) for i in range(h * w)]).reshape(h, w) + 1


@pytest.mark.parametrize("seed", range(6))
def test_bioimage_cpp_solver_equals_the_definition_on_tiny_graphs(seed):
    """Random weights (no ties), invalid pairs and a foreground: the default solver path gives the
    partition of the mutex watershed's definition."""
    rng = np.random.default_rng(seed)
    offsets = [[-1, 0], [0, -1], [-2, 0], [0, -3], [-2, -2], [2, -1]]
    aff = rng.random((len(offsets), 7, 9)).astype(np.float32)
    valid = rng.random(aff.shape) < 0.8
    fg = rng.random(aff.shape[1:]) < 0.85
    alpha = float(rng.uniform(0.3, 1.5))
    seg = mutex_watershed(aff, alpha, offsets, n_attractive=2, valid=valid, foreground=fg)
    edges = edge_mask(aff.shape, offsets, 2, valid=valid, foreground=fg)
    ref = np.where(fg, reference_mws(mws_weights(aff, alpha, 2), edges, offsets, 2), 0)
    assert same_partition(seg, ref)
    assert 1 < seg.max() < fg.sum()


def test_missing_solver_entry_point_is_an_error(monkeypatch):
    import inpaintaff.segment.mws as mws

    monkeypatch.setattr(mws, "_BIC_SOLVERS", {})
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    with pytest.raises(ImportError, match="bioimage-cpp >= 0.10"):
        mutex_watershed(aff, 0.5, valid=valid)


def test_relabel_consecutive():
    lab = np.array([[7, 7, 0], [3, 9, 9]], dtype=np.uint64)
    np.testing.assert_array_equal(relabel_consecutive(lab), [[2, 2, 0], [1, 3, 3]])
    fg = np.array([[True, True, True], [False, True, True]])
    np.testing.assert_array_equal(relabel_consecutive(lab + 1, fg), [[2, 2, 1], [0, 3, 3]])
    assert relabel_consecutive(lab, np.zeros_like(fg)).max() == 0
    out, ids = relabel_with_ids(lab)
    np.testing.assert_array_equal(ids[out[out > 0] - 1], lab[out > 0])
    assert ids.tolist() == [3, 7, 9]


def test_bad_input_errors():
    lab = touching_blobs()
    aff, valid = affinities_from_labels(lab)
    with pytest.raises(InputError, match="11 channels but there are 12 offsets"):
        mutex_watershed(aff[:11], 0.5)
    with pytest.raises(InputError, match="shape"):
        mutex_watershed(aff[0], 0.5)
    with pytest.raises(InputError, match="foreground"):
        mutex_watershed(aff, 0.5, foreground=np.ones((10, 10), bool))
    with pytest.raises(InputError, match="valid"):
        mutex_watershed(aff, 0.5, valid=valid[:, :10])
    with pytest.raises(ValueError, match="alpha"):
        mutex_watershed(aff, -1.0)
    with pytest.raises(ValueError, match="backend"):
        mutex_watershed(aff, 0.5, backend="nope")


@pytest.mark.skipif(not affogato_available(), reason="affogato (conda) with compute_mws_segmentation not importable")
def test_affogato_backend_agrees():
    lab = touching_blobs()
    aff, _ = affinities_from_labels(lab)
    a = noisy(aff, 0.15, seed=1)
    for alpha in (0.3, 0.7):
        ours = mutex_watershed(a, alpha, foreground=lab > 0, backend="bioimage-cpp")
        theirs = mutex_watershed(a, alpha, foreground=lab > 0, backend="affogato")
        assert same_partition(ours, theirs)
