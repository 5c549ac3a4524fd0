"""One image, one pass: foreground, one-pass affinities (the DISTILL student or AFFNET) and the
mutex watershed, at the model's nucleus size. Array in, labels out.

The image is resized so that its nuclei have the diameter the affinity net was trained for
(given, or estimated from a foreground at the input's scale), everything runs at that scale with
α and the fragment size in the model's units, and only the label image goes back (nearest) to
the input's shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from inpaintaff.offsets import N_ATTRACTIVE, OFFSETS, inside_pairs
from inpaintaff.segment.diameter import estimate_diameter, intensity_foreground
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.mws import mutex_watershed
from inpaintaff.segment.postprocess import drop_small_objects, fill_holes, merge_small_segments
from inpaintaff.segment.scale import (
    MIN_EXPLAINED,
    ScaleDecision,
    decide_estimated,
    decide_scale,
    labels_onto_foreground,
    labels_to_shape,
    rescale_image,
    resize,
)
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_consecutive
from inpaintaff.utils.tiling import predict_at_least

FOREGROUNDS = ("fgnet", "intensity", "truefg")
# FGNET's estimate (at the first estimate's scale) refines the first only within this factor of it.
REFINE_RANGE = 1.5

Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class OnePassSettings:
    """How one image is segmented (α and ``min_size`` in the model's pixels)."""

    alpha: float
    min_size: int
    foreground: str  # fgnet | intensity | truefg (the image's own labels; for evaluation)
    threshold: float  # on FGNET's probability
    tile: int
    halo: int
    fill_holes: bool
    scale: bool  # resize to the model's nucleus diameter
    tolerance: float  # factors within this of 1 are not applied
    min_objects: int  # fewer objects behind an estimate: uncertain
    # Objects smaller than this fraction of a nucleus's area at the model's diameter are dropped
    # (specks of noise that a foreground picks up in dim images); 0: none.
    min_area_fraction: float
    backend: str = "bioimage-cpp"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.foreground not in FOREGROUNDS:
            raise ValueError(f"foreground must be one of {FOREGROUNDS}, got {self.foreground!r}")
        for name, low in (("tile", 1), ("halo", 0), ("min_size", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 0.0 <= self.min_area_fraction < 1.0:
            raise ValueError(f"min_area_fraction must be in [0, 1), got {self.min_area_fraction}")


@dataclass
class OnePassResult:
    """Labels at the input's shape, and what happened on the way."""

    labels: np.ndarray
    scale: ScaleDecision
    model_shape: tuple[int, int]
    foreground: np.ndarray  # at the model's scale
    affinities: np.ndarray | None = None  # (12, h, w) at the model's scale, when asked for
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Prepared:
    """One image up to the mutex watershed: at the model's scale but for the input's foreground.
    The foreground is kept as a map in [0, 1] (FGNET's probability, else 0/1), so that a choice of
    its threshold reuses it."""

    input_shape: tuple[int, int]
    scale: ScaleDecision
    foreground_map: np.ndarray  # float32, model scale
    input_map: np.ndarray | None  # float32, input scale (None when not resized)
    affinities: np.ndarray  # (12, h, w), model scale
    seconds: dict[str, float]


class OnePassSegmenter:
    """Segments normalised 2D images with an affinity net and (optionally) FGNET.

    ``affinity`` and ``foreground`` map (1, 1, h, w) float tensors to probabilities (1, C, h, w);
    ``model_diameter`` is the nucleus diameter (px) the affinity net was trained for (None: no
    resizing).
    """

    def __init__(self, affinity: Predict, settings: OnePassSettings, model_diameter: float | None,
                 foreground: Predict | None = None, device: str | torch.device = "cpu"):
        if settings.foreground == "fgnet" and foreground is None:
            raise ValueError("foreground=fgnet needs an FGNET checkpoint")
        self.affinity, self.foreground_net = affinity, foreground
        self.settings, self.model_diameter, self.device = settings, model_diameter, device

    def _foreground_map(self, image: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
        """The foreground of ``image`` as values in [0, 1]: FGNET's probability, or 0/1."""
        s = self.settings
        if s.foreground == "fgnet":
            return predict_at_least(self.foreground_net, image, s.tile, s.halo, self.device)[0]
        if s.foreground == "intensity":
            return intensity_foreground(image).astype(np.float32)
        if gt is None:
            raise InputError(None, "foreground=truefg needs the image's GT labels (data.masks)")
        return true_foreground(gt).astype(np.float32)

    @property
    def threshold(self) -> float:
        return self.settings.threshold if self.settings.foreground == "fgnet" else 0.5

    def _model_scale_map(self, image: np.ndarray, factor: float, gt: np.ndarray | None) -> np.ndarray:
        """The foreground map of ``image`` resized by ``factor`` (computed at that scale)."""
        scaled = rescale_image(image, factor)
        return self._foreground_map(scaled, None if gt is None else labels_to_shape(gt, scaled.shape))

    def _input_map(self, image: np.ndarray, gt: np.ndarray | None, model_map: np.ndarray) -> np.ndarray:
        """The foreground map at the input's scale: exact for TRUEFG and the intensity foreground,
        FGNET's probability resized (linearly) from the model's scale."""
        if self.settings.foreground == "fgnet":
            return resize(model_map, image.shape, order=1)
        return self._foreground_map(image, gt)

    def decide(self, image: np.ndarray, diameter: float | None, gt: np.ndarray | None = None
               ) -> tuple[ScaleDecision, np.ndarray | None]:
        """The resizing of ``image``, and the foreground map at the model's scale when one was made on
        the way.

        Without a given diameter it is estimated from a foreground. A net's foreground is only
        trusted near its own scale, so for FGNET the first estimate comes from the model-free
        intensity foreground, FGNET then runs at that scale, and its foreground gives the final
        estimate (converted back to the input's pixels).
        """
        s = self.settings
        if not s.scale or not self.model_diameter:
            return ScaleDecision(diameter, "none", 1.0, 1.0), None
        if diameter is not None:
            return decide_scale(self.model_diameter, diameter, "given", s.tolerance), None
        first = true_foreground(gt) if s.foreground == "truefg" and gt is not None else intensity_foreground(image)
        est = estimate_diameter(first, min_objects=s.min_objects)
        decision = decide_estimated(self.model_diameter, est, s.tolerance)
        if s.foreground != "fgnet" or decision.source == "unreliable":
            reuse = decision.factor == 1.0 and s.foreground == "intensity"
            return decision, (first.astype(np.float32) if reuse else None)
        fg_map = self._model_scale_map(image, decision.factor, gt)
        refined = estimate_diameter(fg_map > self.threshold, min_objects=s.min_objects)
        if (refined.diameter is None or refined.explained < MIN_EXPLAINED
                or abs(math.log(refined.diameter / self.model_diameter)) > math.log(REFINE_RANGE)):
            # FGNET breaks nuclei far from its size into pieces of about its size, or misses them:
            # far from the first estimate, its foreground says more about FGNET than about the nuclei.
            return decision, fg_map
        final = decide_scale(self.model_diameter, refined.diameter / decision.factor, "estimated", s.tolerance,
                             refined.n_objects, refined.uncertain)
        return final, (fg_map if final.factor == decision.factor else None)

    def prepare(self, image: np.ndarray, diameter: float | None = None, gt: np.ndarray | None = None
                ) -> Prepared:
        """Everything before the mutex watershed: the resizing, the foreground and the affinities at
        the model's scale (what a choice of α and fragment size reuses)."""
        s = self.settings
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise InputError(None, f"expected a 2D image, got shape {image.shape}")
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        decision, fg_map = self.decide(image, diameter, gt)
        seconds["scale"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if fg_map is None:
            fg_map = self._model_scale_map(image, decision.factor, gt)
        input_map = None if decision.factor == 1.0 else self._input_map(image, gt, fg_map)
        seconds["foreground"] = time.perf_counter() - t0
        scaled = rescale_image(image, decision.factor)
        t0 = time.perf_counter()
        aff = predict_at_least(self.affinity, scaled, s.tile, s.halo, self.device)
        seconds["affinities"] = time.perf_counter() - t0
        return Prepared(image.shape, decision, fg_map.astype(np.float32, copy=False),
                        None if input_map is None else input_map.astype(np.float32, copy=False), aff, seconds)

    def finish(self, prep: Prepared, alpha: float | None = None, min_size: int | None = None,
               threshold: float | None = None) -> np.ndarray:
        """Labels at the input's shape from prepared inputs, with the settings' α, fragment size and
        foreground threshold (or the ones given; the threshold counts for FGNET only)."""
        s = self.settings
        alpha = s.alpha if alpha is None else float(alpha)
        min_size = s.min_size if min_size is None else int(min_size)
        threshold = self.threshold if threshold is None or s.foreground != "fgnet" else float(threshold)
        factor = prep.scale.factor
        foreground = prep.foreground_map > threshold
        labels = mutex_watershed(prep.affinities, alpha, OFFSETS, n_attractive=N_ATTRACTIVE,
                                 valid=inside_pairs(foreground.shape), foreground=foreground,
                                 seed=s.seed, backend=s.backend)
        labels = labels_to_shape(merge_small_segments(labels, min_size), prep.input_shape)
        if prep.input_map is not None:
            # Nearest resizing puts outlines up to a model pixel off: lay the labels onto the
            # foreground at the input's scale instead (specks smaller than the fragment size dropped).
            labels = labels_onto_foreground(labels, prep.input_map > threshold, reach=1.0 + 1.0 / factor,
                                            min_new=int(min_size / factor**2))
        labels = relabel_consecutive(labels)
        if s.min_area_fraction > 0 and self.model_diameter is not None:
            nucleus_area = math.pi * (self.model_diameter / factor) ** 2 / 4  # at the input's scale
            labels = drop_small_objects(labels, s.min_area_fraction * nucleus_area)
        if s.fill_holes:  # at the input's shape: shrinking back can close a gap into a hole
            labels = fill_holes(labels)
        return labels

    def __call__(self, image: np.ndarray, diameter: float | None = None, gt: np.ndarray | None = None,
                 keep_affinities: bool = False) -> OnePassResult:
        """Instances of a normalised 2D ``image`` (labels 1..N, 0 background), at its own shape.

        ``diameter``: the nuclei's diameter in px (None: estimated). ``gt``: the image's labels,
        read only for ``foreground=truefg``.
        """
        prep = self.prepare(image, diameter, gt)
        t0 = time.perf_counter()
        labels = self.finish(prep)
        seconds = {**prep.seconds, "mws": time.perf_counter() - t0}
        foreground = prep.foreground_map > self.threshold
        aff = prep.affinities * inside_pairs(foreground.shape) if keep_affinities else None
        return OnePassResult(labels, prep.scale, tuple(foreground.shape), foreground, aff, seconds)
