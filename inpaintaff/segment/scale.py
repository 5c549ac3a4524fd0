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

from inpaintaff.utils.resize import labels_to_shape, rescale_image, resize, scaled_shape  # noqa: F401 (their home before)

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
