"""Nucleus size: the median equivalent-circle diameter of labels, and its estimate from a binary foreground.

Our models are trained on HeLa-sized nuclei (median equivalent diameter about 25 px); an image whose
nuclei have another size is resized first, like cellpose's ``diameter``. Without labels the diameter is
estimated from a foreground. Connected components merge touching nuclei, so their median size
overestimates on crowded images; :func:`estimate_diameter` instead counts one nucleus per maximal
inscribed disk of the Euclidean distance transform (EDT) and measures the part of the foreground
closest to that disk (merging parts joined by a wide neck: one irregular nucleus with several EDT peaks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from inpaintaff.utils.errors import InputError


def _check_2d(a: np.ndarray, what: str, source: str | Path | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise InputError(source, f"{what} must be 2D, got shape {a.shape}")
    if a.size == 0:
        raise InputError(source, f"{what} is empty")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(source, f"{what} contains NaN or infinite values")
    return a


def _check_foreground(foreground: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    fg = _check_2d(foreground, "foreground", source)
    if fg.dtype != bool:
        if not np.issubdtype(fg.dtype, np.number) or not np.isin(fg, (0, 1)).all():
            raise InputError(source, f"foreground must be binary (bool or 0/1), got dtype {fg.dtype}")
        fg = fg.astype(bool)
    return fg


def object_diameters(labels: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Equivalent-circle diameter ``2 sqrt(area / pi)`` of every labeled object (0 = background)."""
    labels = _check_2d(labels, "labels", source)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(source, f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise InputError(source, "labels must be non-negative")
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return 2.0 * np.sqrt(areas / np.pi)


def median_diameter(labels: np.ndarray, source: str | Path | None = None) -> float | None:
    """Median equivalent diameter of the labeled objects; None when there is none."""
    d = object_diameters(labels, source)
    return float(np.median(d)) if d.size else None


@dataclass(frozen=True)
class DiameterEstimate:
    """An estimated median nucleus diameter (px) and how many objects support it.

    ``uncertain`` is True when fewer than ``min_objects`` objects were found (``diameter`` is None when
    there were none at all).
    """

    diameter: float | None
    n_objects: int
    uncertain: bool
    # Share of the foreground that n_objects nuclei of the median size would cover: far below 1,
    # the median describes specks beside a few huge regions (a packed tissue the foreground
    # cannot separate), not the nuclei.
    explained: float = 1.0


def _disk_peaks(dist: np.ndarray, min_radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres and radii of the maximal inscribed disks: EDT local maxima, largest first, each
    suppressing the candidates that lie inside its disk (greedy non-maximum suppression)."""
    cand = (dist >= min_radius) & (dist == ndimage.maximum_filter(dist, size=3))
    ys, xs = np.nonzero(cand)
    rs = dist[ys, xs]
    order = np.argsort(-rs, kind="stable")
    ys, xs, rs = ys[order], xs[order], rs[order]
    suppressed = np.zeros(dist.shape, dtype=bool)
    h, w = dist.shape
    keep = np.zeros(len(rs), dtype=bool)
    for i, (y, x, r) in enumerate(zip(ys, xs, rs)):
        if suppressed[y, x]:
            continue
        keep[i] = True
        k = int(np.ceil(r))
        y0, y1, x0, x1 = max(y - k, 0), min(y + k + 1, h), max(x - k, 0), min(x + k + 1, w)
        yy, xx = np.ogrid[y0 - y : y1 - y, x0 - x : x1 - x]
        suppressed[y0:y1, x0:x1] |= yy * yy + xx * xx < r * r
    return ys[keep], xs[keep], rs[keep]


def _basins(fg: np.ndarray, dist: np.ndarray, ys: np.ndarray, xs: np.ndarray, rs: np.ndarray) -> np.ndarray:
    """Split ``fg`` among the inscribed disks: labels 1..len(ys), 0 outside ``fg``.

    A pixel goes to the disk of its component with the least power distance ``|p - c|^2 - r^2`` (for
    two touching disks the split runs through their contact point) within 4 radii; pixels farther
    from every disk go to the nearest assigned pixel. (``ndimage.watershed_ift`` leaks across basins.)
    """
    comp, n = ndimage.label(fg)
    h, w = fg.shape
    best = np.full(fg.shape, np.inf)
    basins = np.zeros(fg.shape, dtype=np.int64)
    for i, (y, x, r) in enumerate(zip(ys, xs, rs), 1):
        k = int(np.ceil(4 * r))
        y0, y1, x0, x1 = max(y - k, 0), min(y + k + 1, h), max(x - k, 0), min(x + k + 1, w)
        yy, xx = np.ogrid[y0 - y : y1 - y, x0 - x : x1 - x]
        power = yy * yy + xx * xx - r * r
        win = (comp[y0:y1, x0:x1] == comp[y, x]) & (power < best[y0:y1, x0:x1])
        best[y0:y1, x0:x1][win] = power[win]
        basins[y0:y1, x0:x1][win] = i
    has_peak = np.zeros(n + 1, dtype=bool)
    has_peak[comp[ys, xs]] = True
    todo = fg & (basins == 0) & has_peak[comp]
    if todo.any():
        idx = ndimage.distance_transform_edt(basins == 0, return_distances=False, return_indices=True)
        basins[todo] = basins[idx[0][todo], idx[1][todo]]
    return basins


def _merge_shallow(
    basins: np.ndarray, dist: np.ndarray, rs: np.ndarray, neck: float
) -> np.ndarray:
    """Group ids per basin: adjacent basins whose shared boundary (saddle of the EDT) is at least
    ``neck`` times the smaller inscribed radius are one nucleus (a wide neck), not two touching ones."""
    n = len(rs)
    parent = np.arange(n + 1)
    keys, vals = [], []
    for sa, sb in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))), ((slice(0, -1),), (slice(1, None),))):
        a, b = basins[sa], basins[sb]
        m = (a > 0) & (b > 0) & (a != b)
        lo, hi = np.minimum(a[m], b[m]), np.maximum(a[m], b[m])
        keys.append(lo.astype(np.int64) * (n + 1) + hi)
        vals.append(np.minimum(dist[sa][m], dist[sb][m]))
    keys, vals = np.concatenate(keys), np.concatenate(vals)
    if keys.size:
        uk, inv = np.unique(keys, return_inverse=True)
        saddle = np.full(uk.size, -np.inf)
        np.maximum.at(saddle, inv, vals)
        la, lb = uk // (n + 1), uk % (n + 1)
        ratio = saddle / np.minimum(rs[la - 1], rs[lb - 1])

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in np.argsort(-ratio):
            if ratio[i] < neck:
                break
            ra, rb = find(int(la[i])), find(int(lb[i]))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        for i in range(1, n + 1):
            parent[i] = find(i)
    return parent


def estimate_diameter(
    foreground: np.ndarray,
    min_objects: int = 5,
    min_area: int = 12,
    min_radius: float = 2.0,
    neck: float = 0.85,
    source: str | Path | None = None,
) -> DiameterEstimate:
    """Estimate the median equivalent diameter of the nuclei in a binary ``foreground``.

    Components smaller than ``min_area`` px are specks and dropped. Every maximal inscribed disk of
    radius >= ``min_radius`` (an EDT peak not inside a larger one's disk) counts as one nucleus, so
    touching nuclei merged into one component still count one by one. Each nucleus is the part of its
    component nearest its disk (power distance), so its size is measured as an area (no inscribed-to-equivalent
    calibration for elongated nuclei). Adjacent parts whose shared boundary is at least ``neck`` times
    the smaller radius are one irregular nucleus (spurious peaks at lobes and ridge ends) and merge;
    touching nuclei meet at a narrow neck and stay apart. ``neck`` <= 0 never merges.
    """
    fg = _check_foreground(foreground, source)
    if min_objects < 1:
        raise ValueError(f"min_objects must be >= 1, got {min_objects}")
    comp, n = ndimage.label(fg)
    if n:
        sizes = np.bincount(comp.ravel())
        fg = fg & (sizes[comp] >= min_area)
    if not fg.any():
        return DiameterEstimate(None, 0, True)
    # Pad so that objects cut by the image border keep their inscribed disks (border = foreground).
    dist = ndimage.distance_transform_edt(np.pad(fg, 1, mode="edge"))[1:-1, 1:-1]
    ys, xs, rs = _disk_peaks(dist, min_radius)
    if rs.size == 0:
        return DiameterEstimate(None, 0, True)
    basins = _basins(fg, dist, ys, xs, rs)
    group = _merge_shallow(basins, dist, rs, neck) if neck > 0 else np.arange(len(rs) + 1)
    areas = np.bincount(group[basins].ravel(), minlength=len(rs) + 1)[1:]
    kept = areas[areas > 0]
    d = 2.0 * np.sqrt(kept / np.pi)
    if d.size == 0:
        return DiameterEstimate(None, 0, True)
    explained = float(np.median(kept) * kept.size / kept.sum())
    return DiameterEstimate(float(np.median(d)), int(d.size), bool(d.size < min_objects), explained)


def naive_diameter(foreground: np.ndarray, min_area: int = 12, source: str | Path | None = None) -> float | None:
    """Baseline: the median equivalent diameter of the connected components (specks dropped)."""
    fg = _check_foreground(foreground, source)
    comp, _ = ndimage.label(fg)
    areas = np.bincount(comp.ravel())[1:]
    areas = areas[areas >= min_area]
    return float(np.median(2.0 * np.sqrt(areas / np.pi))) if areas.size else None


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (maximal between-class variance over a ``bins`` histogram)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(values, bins=bins)
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def intensity_foreground(image: np.ndarray, sigma: float = 1.0, source: str | Path | None = None) -> np.ndarray:
    """Model-free foreground of a (percentile-normalised) image: Gaussian smoothing, then Otsu."""
    image = _check_2d(image, "image", source)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise InputError(source, f"image must be numeric, got dtype {image.dtype}")
    img = image.astype(np.float32)
    if img.min() == img.max():
        raise InputError(source, f"image is constant (value {img.min():g})")
    smooth = ndimage.gaussian_filter(img, sigma) if sigma > 0 else img
    return smooth > otsu_threshold(smooth)
