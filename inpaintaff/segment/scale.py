"""Nucleus size: images are resized so that their nuclei have the size a model was trained for.

The nets, the engine's patches and the 12 offsets (up to 27 px) are fixed in pixels, so a model
only separates nuclei of about its training size (``nucleus_diameter`` in its checkpoint). An
image with nuclei of ``diameter`` px is resized by ``factor = model_diameter / diameter`` (with
anti-aliasing when it shrinks), segmented at the model's scale, and only the label image is
resized back (nearest) to the input's shape. α and the fragment size stay in the model's units.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from omegaconf import MISSING
from scipy import ndimage as ndi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScaleDecision:
    """How one image is resized: the nucleus diameter it was judged to hold and the factor applied."""

    diameter: float | None  # nucleus diameter in the input (px); None: unknown (no resizing)
    source: str  # "given", "estimated", "none" (scaling off) or "unknown" (estimate failed)
    factor: float  # applied: model scale = input scale * factor
    raw_factor: float  # model_diameter / diameter before snapping to 1 (1.0 when unknown)
    n_objects: int = 0  # objects the estimate rests on
    uncertain: bool = False

    def as_row(self) -> dict:
        return {"diameter": self.diameter, "diameter_source": self.source, "scale_factor": self.factor,
                "raw_scale_factor": self.raw_factor, "diameter_objects": self.n_objects,
                "diameter_uncertain": self.uncertain}


# Estimates explaining less of the foreground than this are not acted on (see DiameterEstimate).
MIN_EXPLAINED = 0.3
# Images are never resized by more than this (or less than its inverse): 4 covers nuclei of 6 to
# 100 px for a 25-px model, and a wrong estimate beyond it would cost 16× the pixels.
MAX_FACTOR = 4.0


def decide_scale(model_diameter: float | None, diameter: float | None, source: str, tolerance: float = 0.1,
                 n_objects: int = 0, uncertain: bool = False) -> ScaleDecision:
    """The factor that brings nuclei of ``diameter`` px to ``model_diameter`` px.

    Factors within ``tolerance`` of 1 (relative) snap to exactly 1: resampling blurs, and a
    model trained on a range of sizes does not need a 5 % correction. Factors are clipped to
    [1/MAX_FACTOR, MAX_FACTOR]. With no model diameter or no diameter the image is not resized.
    """
    if not model_diameter or not diameter or not math.isfinite(diameter) or diameter <= 0:
        return ScaleDecision(diameter, source if diameter else "unknown", 1.0, 1.0, n_objects, uncertain)
    raw = float(model_diameter) / float(diameter)
    factor = 1.0 if abs(math.log(raw)) <= math.log1p(tolerance) else min(max(raw, 1.0 / MAX_FACTOR), MAX_FACTOR)
    return ScaleDecision(float(diameter), source, factor, raw, n_objects, uncertain)


def decide_estimated(model_diameter: float | None, estimate, tolerance: float) -> ScaleDecision:
    """``decide_scale`` for a :class:`~inpaintaff.segment.diameter.DiameterEstimate`; an estimate that
    explains too little of the foreground is reported (source ``unreliable``) but not applied."""
    if estimate.diameter is not None and estimate.explained < MIN_EXPLAINED:
        raw = float(model_diameter) / estimate.diameter if model_diameter else 1.0
        return ScaleDecision(estimate.diameter, "unreliable", 1.0, raw, estimate.n_objects, True)
    return decide_scale(model_diameter, estimate.diameter, "estimated", tolerance, estimate.n_objects,
                        estimate.uncertain)


def scaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """Shape of a 2D image resized by ``factor`` (at least 1 px per axis)."""
    return tuple(max(1, int(round(n * factor))) for n in shape[-2:])  # type: ignore[return-value]


def rescale_image(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (2D, float) resized by ``factor``: Gaussian anti-aliasing before shrinking
    (σ = (1/factor − 1)/2, as scikit-image's ``rescale``), then linear interpolation."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1.0:
        return image
    if factor < 1.0:
        image = ndi.gaussian_filter(image, sigma=max(0.0, (1.0 / factor - 1.0) / 2.0), mode="mirror")
    return resize(image, scaled_shape(image.shape, factor), order=1)


def resize(array: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize the last two axes of ``array`` to ``shape``: pixel centres map onto pixel centres
    (``order`` 0: nearest, which keeps labels labels; 1: linear)."""
    h, w = array.shape[-2:]
    if (h, w) == tuple(shape):
        return array
    if order == 0:
        rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
        return array[..., rows[:, None], cols[None, :]]
    ys = (np.arange(shape[0]) + 0.5) * h / shape[0] - 0.5
    xs = (np.arange(shape[1]) + 0.5) * w / shape[1] - 0.5
    grid = np.meshgrid(ys, xs, indexing="ij")
    if array.ndim == 2:
        return ndi.map_coordinates(array, grid, order=order, mode="nearest").astype(array.dtype)
    return np.stack([ndi.map_coordinates(a, grid, order=order, mode="nearest") for a in array]).astype(array.dtype)


def labels_to_shape(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label image resized (nearest) to ``shape``: the way back from the model's scale."""
    return resize(np.asarray(labels), tuple(shape), order=0)


def warn_if_far(name: str, decision: ScaleDecision, far: float = 2.0) -> None:
    """Log a warning when the factor is far from 1 or the estimate rests on too few objects."""
    if decision.source == "unreliable":
        log.warning("%s: the nucleus diameter could not be estimated (%.1f px from %d object(s) that explain "
                    "little of the foreground: packed or faint nuclei); not resized: set data.diameter",
                    name, decision.diameter, decision.n_objects)
    elif decision.uncertain:
        log.warning("%s: nucleus diameter %s estimated from only %d object(s): uncertain; set data.diameter "
                    "if the masks look wrong", name, "unknown" if decision.diameter is None
                    else f"{decision.diameter:.1f} px", decision.n_objects)
    if decision.factor != decision.raw_factor and decision.source != "unreliable" and decision.factor != 1.0:
        log.warning("%s: resizing by %.2f clipped to %.2f", name, decision.raw_factor, decision.factor)
    if decision.factor != 1.0 and (decision.factor > far or decision.factor < 1.0 / far):
        log.warning("%s: resized by %.2f (nuclei of %.1f px, the model's are %.1f px): far from the model's "
                    "size; results are best when the model is trained on nuclei like these", name,
                    decision.factor, decision.diameter, decision.diameter * decision.raw_factor)


@dataclass
class ScaleSpec:
    """``task.scale``: whether and how frames are resized to the model's nucleus size (defaults in
    the task YAMLs)."""

    enabled: bool = MISSING
    tolerance: float = MISSING  # factors within this (relative) of 1 are not applied
    min_objects: int = MISSING  # an estimate from fewer objects is uncertain
    warn_factor: float = MISSING  # warn when resized by more than this (or less than its inverse)


def estimate_scale(image: np.ndarray, model_diameter: float | None, diameter: float | None, spec: ScaleSpec,
                   name: str = "") -> ScaleDecision:
    """The resizing of one normalised frame: ``diameter`` when given (``data.diameter``), else
    estimated from the frame's model-free intensity foreground; logged and warned about."""
    from inpaintaff.segment.diameter import estimate_diameter, intensity_foreground

    if not spec.enabled or not model_diameter:
        return ScaleDecision(diameter, "none", 1.0, 1.0)
    if diameter is not None:
        decision = decide_scale(model_diameter, diameter, "given", spec.tolerance)
    else:
        est = estimate_diameter(intensity_foreground(image), min_objects=spec.min_objects)
        decision = decide_estimated(model_diameter, est, spec.tolerance)
    log.info("%s: nucleus diameter %s (%s), resized by %.3g", name or "frame",
             "unknown" if decision.diameter is None else f"{decision.diameter:.1f} px", decision.source,
             decision.factor)
    warn_if_far(name or "frame", decision, spec.warn_factor)
    return decision


def labels_onto_foreground(labels: np.ndarray, foreground: np.ndarray, reach: float, min_new: int = 0
                           ) -> np.ndarray:
    """Labels brought back to the input's shape, laid onto a foreground known at that scale.

    Nearest resizing of a label image made at a coarser scale puts its edges up to a model pixel
    off (blocky outlines; on nuclei shrunk by 2, about 6 % of SEG). With the foreground at the
    input's scale (TRUEFG exactly, FGNET's probability resized), every pixel outside it becomes
    background and every pixel inside it takes the label of the nearest labeled pixel within
    ``reach`` px; the rest of it (objects lost at the model's scale) become new labels, one per
    connected component of at least ``min_new`` px.
    """
    labels = np.asarray(labels)
    fg = np.asarray(foreground, dtype=bool)
    if labels.shape != fg.shape:
        raise ValueError(f"labels {labels.shape} and foreground {fg.shape} differ in shape")
    out = np.zeros_like(labels)
    if labels.any():
        dist, idx = ndi.distance_transform_edt(labels == 0, return_indices=True)
        near = labels[idx[0], idx[1]]
        take = fg & (dist <= reach)
        out[take] = near[take]
    rest, n = ndi.label(fg & (out == 0))
    if n:
        sizes = np.bincount(rest.ravel())
        keep = sizes >= max(min_new, 1)
        keep[0] = False
        out[keep[rest]] = rest[keep[rest]] + labels.max()
    return out
