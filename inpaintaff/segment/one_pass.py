"""One image, one pass: foreground, one-pass affinities (the DISTILL student or AFFNET) and the
mutex watershed, at the model's nucleus size. Array in, labels out.

The image is resized so that its nuclei have the diameter the affinity net was trained for
(given, or estimated from a foreground at the input's scale), everything runs at that scale with
α and the fragment size in the model's units, and only the label image goes back (nearest) to
the input's shape; with TRUEFG, known exactly at the input's scale, its outlines come from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from inpaintaff.offsets import N_ATTRACTIVE, OFFSETS, shifted_slices
from inpaintaff.segment.diameter import estimate_diameter, intensity_foreground
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.mws import mutex_watershed
from inpaintaff.segment.postprocess import fill_holes, merge_small_segments
from inpaintaff.segment.scale import (ScaleDecision, decide_scale, labels_onto_foreground, labels_to_shape,
                                     rescale_image)
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_consecutive
from inpaintaff.utils.tiling import predict_with_halo

FOREGROUNDS = ("fgnet", "intensity", "truefg")
# The offsets reach 27 px: a model-scale image is padded to at least this size.
MIN_SIDE = 64

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
    backend: str = "bioimage-cpp"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.foreground not in FOREGROUNDS:
            raise ValueError(f"foreground must be one of {FOREGROUNDS}, got {self.foreground!r}")


@dataclass
class OnePassResult:
    """Labels at the input's shape, and what happened on the way."""

    labels: np.ndarray
    scale: ScaleDecision
    model_shape: tuple[int, int]
    foreground: np.ndarray  # at the model's scale
    affinities: np.ndarray | None = None  # (12, h, w) at the model's scale, when asked for
    seconds: dict[str, float] = field(default_factory=dict)


def inside_pairs(shape: tuple[int, int], offsets=OFFSETS) -> np.ndarray:
    """(C, H, W) True where the pixel pair of each offset lies inside an image of ``shape``."""
    valid = np.zeros((len(offsets), *shape), dtype=bool)
    for c, off in enumerate(offsets):
        src, _ = shifted_slices(shape, tuple(off))
        valid[c][src] = True
    return valid


def _pad_to(image: np.ndarray, side: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """``image`` padded (reflected) to at least ``side`` per axis, and where the image sits in it."""
    ph, pw = max(0, side - image.shape[0]), max(0, side - image.shape[1])
    if not ph and not pw:
        return image, (slice(None), slice(None))
    mode = "reflect" if min(image.shape) > 1 and ph < image.shape[0] and pw < image.shape[1] else "edge"
    padded = np.pad(image, ((0, ph), (0, pw)), mode=mode)
    return padded, (slice(0, image.shape[0]), slice(0, image.shape[1]))


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

    def _foreground(self, image: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
        s = self.settings
        if s.foreground == "fgnet":
            prob = predict_with_halo(self.foreground_net, image, s.tile, s.halo, self.device)[0]
            return prob > s.threshold
        if s.foreground == "intensity":
            return intensity_foreground(image)
        if gt is None:
            raise InputError(None, "foreground=truefg needs the image's GT labels (data.masks)")
        return true_foreground(gt)

    def decide(self, image: np.ndarray, diameter: float | None, gt: np.ndarray | None = None
               ) -> tuple[ScaleDecision, np.ndarray | None]:
        """The resizing of ``image``; also the input-scale foreground when one was computed for it."""
        s = self.settings
        if not s.scale or not self.model_diameter:
            return ScaleDecision(diameter, "none", 1.0, 1.0), None
        if diameter is not None:
            return decide_scale(self.model_diameter, diameter, "given", s.tolerance), None
        fg = self._foreground(image, gt)
        est = estimate_diameter(fg, min_objects=s.min_objects)
        return decide_scale(self.model_diameter, est.diameter, "estimated", s.tolerance, est.n_objects,
                            est.uncertain), fg

    def __call__(self, image: np.ndarray, diameter: float | None = None, gt: np.ndarray | None = None,
                 keep_affinities: bool = False) -> OnePassResult:
        """Instances of a normalised 2D ``image`` (labels 1..N, 0 background), at its own shape.

        ``diameter``: the nuclei's diameter in px (None: estimated). ``gt``: the image's labels,
        read only for ``foreground=truefg``.
        """
        s = self.settings
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise InputError(None, f"expected a 2D image, got shape {image.shape}")
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        decision, fg_input = self.decide(image, diameter, gt)
        seconds["scale"] = time.perf_counter() - t0
        scaled = rescale_image(image, decision.factor)
        padded, inner = _pad_to(scaled, MIN_SIDE)
        t0 = time.perf_counter()
        if fg_input is not None and decision.factor == 1.0:
            fg = fg_input
        else:
            gt_scaled = None if gt is None else labels_to_shape(gt, scaled.shape)
            fg = self._foreground(padded, None if gt_scaled is None else np.pad(
                gt_scaled, [(0, padded.shape[0] - scaled.shape[0]), (0, padded.shape[1] - scaled.shape[1])]))[inner]
        seconds["foreground"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        aff = predict_with_halo(self.affinity, padded, s.tile, s.halo, self.device)[(slice(None), *inner)]
        seconds["affinities"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        valid = inside_pairs(scaled.shape)
        labels = mutex_watershed(aff, s.alpha, OFFSETS, n_attractive=N_ATTRACTIVE, valid=valid, foreground=fg,
                                 seed=s.seed, backend=s.backend)
        labels = merge_small_segments(labels, s.min_size)
        if s.fill_holes:
            labels = fill_holes(labels)
        labels = labels_to_shape(labels, image.shape)
        if s.foreground == "truefg" and decision.factor != 1.0:
            # TRUEFG is exact at the input's scale: outlines from it, not from the model's pixels.
            fg_in = fg_input if fg_input is not None else true_foreground(gt)
            labels = labels_onto_foreground(labels, fg_in, reach=1.0 + 1.0 / decision.factor)
        labels = relabel_consecutive(labels)
        seconds["mws"] = time.perf_counter() - t0
        return OnePassResult(labels, decision, tuple(scaled.shape), fg,
                             (aff * valid) if keep_affinities else None, seconds)
