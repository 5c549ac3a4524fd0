"""Mutex watershed on affinities (docs/method.md §5), on bioimage-cpp with affogato's conventions.

Conventions (pinned down by tests/test_mws.py::test_sign_convention_two_touching_objects):
the solver takes *weights*, sorted in descending order; a high attractive weight merges early, a high
repulsive weight forbids a merge early. From affinities (1 = same object):
``weights[:n_attr] = aff[:n_attr]`` and ``weights[n_attr:] = alpha * (1 - aff[n_attr:])``.

Invalid pairs (``valid`` False) and pairs touching the background are not edges of the graph at
all: they neither merge nor forbid anything. With ``alpha = 0`` the repulsive edges are dropped,
so only attractive merges remain (the result is the connected components of the foreground).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inpaintaff.offsets import N_ATTRACTIVE, OFFSETS, shifted_slices
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_consecutive

BACKENDS = ("bioimage-cpp", "affogato", "auto")

try:  # the solver without bioimage-cpp's wrapper, so that we can pass our own edge mask
    from bioimage_cpp import _core as _bic_core

    _BIC_SOLVERS = {
        np.dtype("float32"): _bic_core._mutex_watershed_grid_float32,
        np.dtype("float64"): _bic_core._mutex_watershed_grid_float64,
    }
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed version
    _BIC_SOLVERS = {}


def affogato_available() -> bool:
    """True when the real affogato (conda) with ``compute_mws_segmentation`` is importable."""
    try:
        from affogato.segmentation import compute_mws_segmentation  # noqa: F401
    except Exception:  # PyPI's unrelated "affogato" has no such module
        return False
    return True


def check_inputs(
    aff: np.ndarray,
    offsets: Sequence[Sequence[int]],
    n_attractive: int,
    valid: np.ndarray | None = None,
    foreground: np.ndarray | None = None,
    source: str | Path | None = None,
) -> np.ndarray:
    """Validate shapes, dtypes and the [0, 1] range; returns ``aff`` as a float32/float64 array (no copy if
    possible)."""
    aff = np.asarray(aff)
    if aff.ndim != 3:
        raise InputError(source, f"affinities must have shape (channels, H, W), got shape {aff.shape}")
    if any(len(o) != 2 for o in offsets):
        raise InputError(source, f"offsets must be 2D (dy, dx) pairs, got {list(offsets)}")
    if aff.shape[0] != len(offsets):
        raise InputError(
            source, f"affinities have {aff.shape[0]} channels but there are {len(offsets)} offsets"
        )
    if not 0 <= n_attractive <= len(offsets):
        raise InputError(source, f"n_attractive={n_attractive} must lie in [0, {len(offsets)}]")
    if aff.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(aff.dtype, np.floating) or np.issubdtype(aff.dtype, np.integer)):
            raise InputError(source, f"affinities must be numbers, got dtype {aff.dtype}")
        aff = aff.astype(np.float32)
    if valid is not None and np.shape(valid) != aff.shape:
        raise InputError(source, f"valid mask has shape {np.shape(valid)}, affinities have {aff.shape}")
    if foreground is not None and np.shape(foreground) != aff.shape[1:]:
        raise InputError(
            source, f"foreground has shape {np.shape(foreground)}, affinities have shape (C, *) {aff.shape}"
        )
    # Probabilities of "same object"; logits or scaled values would silently give another segmentation.
    # Only valid pairs count; NaN is left to mutex_watershed (ignored where invalid, an error where valid).
    vals = aff if valid is None else aff[np.asarray(valid, dtype=bool)]
    if vals.size:
        lo, hi = float(np.fmin.reduce(vals, axis=None)), float(np.fmax.reduce(vals, axis=None))
        if lo < 0 or hi > 1:
            raise InputError(source, f"affinities must lie in [0, 1] (1 = same object), found values from {lo:g} "
                             f"to {hi:g}: pass probabilities, not logits")
    return aff


def mws_weights(aff: np.ndarray, alpha: float, n_attractive: int = N_ATTRACTIVE) -> np.ndarray:
    """Edge weights: attractive = aff, repulsive = alpha * (1 - aff) (a new array, aff's dtype)."""
    w = np.empty_like(aff)
    w[:n_attractive] = aff[:n_attractive]
    rep = w[n_attractive:]
    np.multiply(aff[n_attractive:], -alpha, out=rep)
    rep += alpha
    return w


def edge_mask(
    shape: tuple[int, int, int],
    offsets: Sequence[Sequence[int]],
    n_attractive: int = N_ATTRACTIVE,
    *,
    valid: np.ndarray | None = None,
    foreground: np.ndarray | None = None,
    strides: Sequence[int] | None = None,
    randomized_strides: bool = False,
    seed: int = 0,
    drop_repulsive: bool = False,
) -> np.ndarray:
    """Which pairs are edges of the graph (bool (C, H, W)).

    An edge needs both pixels in the image and in the foreground, ``valid`` True, and, for
    repulsive channels with ``strides``, to lie on the stride grid (or, randomized, to be drawn
    with probability 1/prod(strides) from a generator seeded by ``seed``).
    """
    img = tuple(shape[1:])
    mask = np.zeros(shape, dtype=bool)
    fg = None if foreground is None else np.asarray(foreground, dtype=bool)
    n_channels = n_attractive if drop_repulsive else shape[0]
    for c in range(n_channels):
        s, d = shifted_slices(img, tuple(offsets[c]))
        if fg is None:
            mask[c][s] = True
        else:
            np.logical_and(fg[s], fg[d], out=mask[c][s])
    if valid is not None:
        np.logical_and(mask, valid, out=mask)
    if strides is not None and not drop_repulsive and shape[0] > n_attractive:
        strides = [int(s) for s in strides]
        if len(strides) != 2 or min(strides) < 1:
            raise ValueError(f"strides must be two positive integers, got {strides}")
        rep = mask[n_attractive:]
        if randomized_strides:
            keep = np.random.default_rng(seed).random(rep.shape) < 1.0 / float(np.prod(strides))
            np.logical_and(rep, keep, out=rep)
        else:
            grid = np.zeros(img, dtype=bool)
            grid[:: strides[0], :: strides[1]] = True
            np.logical_and(rep, grid, out=rep)
    return mask


def _solve_bioimage_cpp(weights: np.ndarray, edges: np.ndarray, offsets, n_attractive: int) -> np.ndarray:
    solver = _BIC_SOLVERS.get(weights.dtype)
    if solver is None:
        raise ImportError("the mutex watershed needs bioimage-cpp >= 0.10 (its grid solver bioimage_cpp._core "
                          "was not found)")
    offs = [list(map(int, o)) for o in offsets]
    return solver(np.ascontiguousarray(weights), edges.view(np.uint8), offs, n_attractive)


def _solve_affogato(weights, offsets, n_attractive, valid, foreground, strides, randomized_strides, alpha):
    from affogato.segmentation import compute_mws_segmentation

    if valid is not None:
        inside = edge_mask(weights.shape, offsets, n_attractive, foreground=foreground)
        if (inside & ~valid).any():
            raise InputError(None, "the affogato backend cannot mask single pairs; use backend=bioimage-cpp")
    n = n_attractive if alpha == 0 else len(offsets)
    return compute_mws_segmentation(
        np.ascontiguousarray(weights[:n]),
        [list(map(int, o)) for o in offsets[:n]],
        n_attractive,
        strides=None if strides is None else list(strides),
        randomize_strides=bool(randomized_strides),
        mask=foreground,
    )


def mutex_watershed(
    aff: np.ndarray,
    alpha: float,
    offsets: Sequence[Sequence[int]] = OFFSETS,
    *,
    n_attractive: int = N_ATTRACTIVE,
    valid: np.ndarray | None = None,
    foreground: np.ndarray | None = None,
    strides: Sequence[int] | None = None,
    randomized_strides: bool = False,
    seed: int = 0,
    backend: str = "bioimage-cpp",
    source: str | Path | None = None,
) -> np.ndarray:
    """Instances from affinities (C, H, W): int64 labels 1..N, background 0.

    ``valid`` (C, H, W) masks pairs without evidence; ``foreground`` (H, W) restricts the result.
    NaN affinities are an error where the pair is valid and ignored where it is not.
    ``backend``: "bioimage-cpp", "affogato" (conda's affogato, same conventions) or "auto".
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    aff = check_inputs(aff, offsets, n_attractive, valid, foreground, source)
    fg = None if foreground is None else np.asarray(foreground, dtype=bool)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
    if backend == "auto":
        backend = "affogato" if affogato_available() else "bioimage-cpp"

    weights = mws_weights(aff, float(alpha), n_attractive)
    if backend == "affogato":
        if not np.isfinite(weights).all():
            raise InputError(source, "affinities contain NaN/inf (the affogato backend needs all finite)")
        labels = _solve_affogato(weights, offsets, n_attractive, valid, fg, strides, randomized_strides, alpha)
        return relabel_consecutive(labels, fg)

    edges = edge_mask(
        aff.shape, offsets, n_attractive, valid=valid, foreground=fg, strides=strides,
        randomized_strides=randomized_strides, seed=seed, drop_repulsive=alpha == 0,
    )
    # min/max propagate NaN: two cheap passes find NaN and +-inf; only then look where they are.
    if not (math.isfinite(weights.min()) and math.isfinite(weights.max())):
        bad = ~np.isfinite(weights)
        if (bad & edges).any():
            n_bad = int((bad & edges).sum())
            raise InputError(source, f"affinities contain {n_bad} NaN/inf values on valid pairs")
        weights[bad] = 0
    return relabel_consecutive(_solve_bioimage_cpp(weights, edges, offsets, n_attractive), fg)
