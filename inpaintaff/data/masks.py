"""Training masks for the inpainting net (1 = known, 0 = hole), drawn from a numpy Generator.

Two families, mixed by configurable ratios:
- ``irregular``: strokes, ellipses and smooth blobs until a drawn hole ratio is met (the last
  step hides the top-ranked known pixels of a smooth random field, so the ratio is exact up to
  one pixel);
- ``igm``: what the IGM split engine asks at inference (docs/method.md §3): a region R (a random
  blob, or the whole crop) cut in two by a smooth random boundary; one side minus the band N
  (the pixels of R whose disk of radius d meets both sides) is known; the other side, N and
  everything outside R are hidden. d is drawn from ``d_range`` (the engine's 1..d0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage as ndi

from inpaintaff.igm.filters import hidden_band

FAMILIES = ("irregular", "igm")


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise, zero mean, unit std."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _ellipse(shape: tuple[int, int], rng: np.random.Generator, area: float) -> np.ndarray:
    h, w = shape
    r = np.sqrt(max(area, 4.0) / np.pi)
    a, b = r * rng.uniform(0.6, 1.6), r * rng.uniform(0.6, 1.6)
    cy, cx, th = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:h, :w]
    u = (yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)
    v = -(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _stroke(shape: tuple[int, int], rng: np.random.Generator, area: float) -> np.ndarray:
    h, w = shape
    width = rng.uniform(2.0, max(3.0, min(h, w) / 10))
    length = max(area / width, 4.0)
    n = int(rng.integers(2, 6))
    pts = [np.array([rng.uniform(0, h), rng.uniform(0, w)])]
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
        angle += rng.uniform(-1.2, 1.2)
        pts.append(pts[-1] + (length / n) * np.array([np.sin(angle), np.cos(angle)]))
    line = np.zeros(shape, bool)
    for p, q in zip(pts[:-1], pts[1:]):
        t = np.linspace(0, 1, int(np.hypot(*(q - p))) * 2 + 2)
        yx = np.round(p[None] + t[:, None] * (q - p)[None]).astype(int)
        ok = (yx[:, 0] >= 0) & (yx[:, 0] < h) & (yx[:, 1] >= 0) & (yx[:, 1] < w)
        line[yx[ok, 0], yx[ok, 1]] = True
    return ndi.distance_transform_edt(~line) <= width / 2 if line.any() else line


def irregular_mask(
    shape: tuple[int, int], rng: np.random.Generator, hole_ratio: float | None = None,
    hole_range: tuple[float, float] = (0.1, 0.6),
) -> np.ndarray:
    """Irregular hole mask (float32, 1 = known) with hole fraction ``hole_ratio`` (exact to a pixel)."""
    h, w = shape
    ratio = float(rng.uniform(*hole_range)) if hole_ratio is None else float(hole_ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"hole_ratio must be in [0, 1], got {ratio}")
    target = int(round(ratio * h * w))
    hole = np.zeros(shape, bool)
    shapes_part = target * rng.uniform(0.3, 0.9)  # strokes/ellipses first, a smooth blob fills the rest
    while hole.sum() < shapes_part:
        deficit = shapes_part - hole.sum()
        area = deficit * rng.uniform(0.3, 1.0)
        hole |= _stroke(shape, rng, area) if rng.random() < 0.5 else _ellipse(shape, rng, area)
    n_more = target - int(hole.sum())
    if n_more > 0:
        fld = smooth_field(shape, rng, sigma=rng.uniform(2.0, max(2.5, min(h, w) / 8)))
        fld[hole] = -np.inf
        idx = np.argpartition(fld.ravel(), -n_more)[-n_more:]
        hole.ravel()[idx] = True
    elif n_more < 0:  # strokes overshot: give back the lowest-ranked hole pixels
        fld = smooth_field(shape, rng, sigma=2.0)
        fld[~hole] = np.inf
        idx = np.argpartition(fld.ravel(), -n_more - 1)[: -n_more]
        hole.ravel()[idx] = False
    return (~hole).astype(np.float32)


@dataclass
class IGMMask:
    """An IGM-shaped mask and its parts (all (H,W) bool except ``known``)."""

    known: np.ndarray  # float32, 1 = known
    region: np.ndarray
    side: np.ndarray  # the known side M (before removing the band)
    band: np.ndarray
    d: int


def random_region(shape: tuple[int, int], rng: np.random.Generator, p_whole: float = 0.3) -> np.ndarray:
    """The whole crop (probability ``p_whole``) or the largest component of a thresholded smooth blob."""
    if rng.random() < p_whole:
        return np.ones(shape, bool)
    h, w = shape
    frac = rng.uniform(0.25, 0.85)
    fld = smooth_field(shape, rng, sigma=rng.uniform(min(h, w) / 12, min(h, w) / 5))
    blob = fld > np.quantile(fld, 1 - frac)
    lab, n = ndi.label(blob)
    if n > 1:
        blob = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    return blob if blob.sum() >= 16 else np.ones(shape, bool)


def split_region(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One side of ``region`` cut by a smooth random boundary (a tilted plane plus smooth noise)."""
    h, w = region.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    th = rng.uniform(0, 2 * np.pi)
    plane = (yy - h / 2) * np.sin(th) + (xx - w / 2) * np.cos(th)
    wiggle = smooth_field(region.shape, rng, sigma=rng.uniform(min(h, w) / 10, min(h, w) / 4))
    fld = plane / max(h, w) + rng.uniform(0.0, 0.4) * wiggle
    vals = fld[region]
    cut = np.quantile(vals, rng.uniform(0.25, 0.75)) if vals.size else 0.0
    return region & (fld > cut)


def band(side: np.ndarray, other: np.ndarray, d: int) -> np.ndarray:
    """Pixels whose disk of radius ``d`` meets both ``side`` and ``other`` (the engine's N), in either."""
    side, other = np.asarray(side, dtype=bool), np.asarray(other, dtype=bool)
    a, b, within = (torch.from_numpy(np.ascontiguousarray(x))[None, None] for x in (side, other, side | other))
    return hidden_band(a, b, int(d), within)[0, 0].numpy()


def igm_mask(
    shape: tuple[int, int], rng: np.random.Generator, d_range: tuple[int, int] = (1, 6), p_whole: float = 0.3
) -> IGMMask:
    """An IGM-shaped mask: known = M \\ N; the other side, the band N and all outside R are hidden."""
    region = random_region(shape, rng, p_whole)
    side = split_region(region, rng)
    other = region & ~side
    d = int(rng.integers(d_range[0], d_range[1] + 1))
    n = band(side, other, d)
    known = side & ~n
    return IGMMask(known=known.astype(np.float32), region=region, side=side, band=n, d=d)


@dataclass
class MaskSampler:
    """Draws training masks from the families mixed by ``ratios`` (normalised to sum 1)."""

    ratios: Mapping[str, float] = field(default_factory=lambda: {"irregular": 0.3, "igm": 0.7})
    hole_range: tuple[float, float] = (0.1, 0.6)
    d_range: tuple[int, int] = (1, 6)
    p_whole: float = 0.3

    def __post_init__(self):
        unknown = set(self.ratios) - set(FAMILIES)
        if unknown or not self.ratios:
            raise ValueError(f"mask families must be among {FAMILIES}, got {dict(self.ratios)}")
        p = np.array([float(self.ratios.get(f, 0.0)) for f in FAMILIES])
        if (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"mask ratios must be >= 0 with a positive sum, got {dict(self.ratios)}")
        self._p = p / p.sum()
        self.hole_range = tuple(float(v) for v in self.hole_range)
        self.d_range = tuple(int(v) for v in self.d_range)
        if self.d_range[0] < 1 or self.d_range[1] < self.d_range[0]:
            raise ValueError(f"d_range must be 1 <= lo <= hi, got {self.d_range}")

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One mask (H,W) float32, 1 = known."""
        family = FAMILIES[int(rng.choice(len(FAMILIES), p=self._p))]
        if family == "irregular":
            return irregular_mask(shape, rng, hole_range=self.hole_range)
        return igm_mask(shape, rng, self.d_range, self.p_whole).known

    def batch(self, n: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """``n`` masks stacked as (n,1,H,W) float32."""
        return np.stack([self.sample(shape, rng) for _ in range(n)])[:, None]
