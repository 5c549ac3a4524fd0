"""One frame through the segmentation pipeline: inputs -> instances -> scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inpaintaff.io.affinities import Affinities
from inpaintaff.metrics.ctc import SegResult, seg_from_overlap
from inpaintaff.metrics.detection import DEFAULT_THRESHOLDS, DetectionCounts, detection_from_overlap
from inpaintaff.metrics.overlap import MAX_LABEL, overlap
from inpaintaff.offsets import N_ATTRACTIVE, shifted_slices
from inpaintaff.segment.baselines import connected_components
from inpaintaff.segment.mws import mutex_watershed
from inpaintaff.segment.postprocess import merge_small_segments
from inpaintaff.segment.scale import labels_onto_foreground, labels_to_shape, rescale_image
from inpaintaff.segment.settings import MwsSpec
from inpaintaff.segment.sources import FrameData, TaskSources, frame_affinities, frame_foreground
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_consecutive

METHODS = ("mws", "cc")


@dataclass
class FrameInput:
    """Everything needed to segment and score one frame."""

    seq: str
    frame: int
    image: np.ndarray
    labels: np.ndarray | None
    foreground: np.ndarray
    affinities: Affinities | None
    # Full frame shape and where this input sits in it (a crop), for writing full-size masks.
    frame_shape: tuple[int, int] | None = None
    window: tuple[slice, slice] | None = None
    # Fraction of the (cropped) frame that the affinities cover (pixels with a valid pair).
    coverage: float = 1.0
    # ``foreground`` and ``affinities`` are at the model's scale = the input's * factor (image and
    # labels stay at the input's scale, where masks are written and scored).
    factor: float = 1.0
    # With factor != 1: the foreground at the input's scale, which outlines follow on the way back.
    input_foreground: np.ndarray | None = None

    def to_input(self, labels: np.ndarray, min_size: int = 0) -> np.ndarray:
        """Labels at the model's scale brought back to the input's shape: resized (nearest), then
        laid onto the input-scale foreground (pieces under ``min_size`` model pixels dropped)."""
        if self.factor == 1.0:
            return labels
        labels = labels_to_shape(labels, self.image.shape)
        if self.input_foreground is not None:
            labels = labels_onto_foreground(labels, self.input_foreground, reach=1.0 + 1.0 / self.factor,
                                            min_new=int(min_size / self.factor**2))
        return relabel_consecutive(labels)

    def full_frame(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` of this input placed into a zero frame of the full size."""
        if self.window is None:
            return labels
        out = np.zeros(self.frame_shape, dtype=labels.dtype)
        out[self.window] = labels
        return out


@dataclass
class FrameScore:
    seg: SegResult
    detection: DetectionCounts


def check_crop(crop: Sequence[int], key: str = "task.crop") -> None:
    """``crop`` is [y0, x0, h, w] with the origin inside the frame (>= 0) and h, w >= 1."""
    if len(crop) != 4:
        raise ValueError(f"{key} must be [y0, x0, h, w], got {list(crop)}")
    if int(crop[0]) < 0 or int(crop[1]) < 0:
        raise ValueError(f"{key} {list(crop)}: the origin y0, x0 must be >= 0 (the frame's top-left corner is 0, 0)")
    if int(crop[2]) < 1 or int(crop[3]) < 1:
        raise ValueError(f"{key} {list(crop)}: the size h, w must be >= 1")


def crop_window(crop: Sequence[int] | None, shape: tuple[int, int], source: Any = None) -> tuple[slice, slice] | None:
    """Slices of ``crop = [y0, x0, h, w]`` inside a frame of ``shape`` (None: the whole frame)."""
    if crop is None:
        return None
    check_crop(crop)
    y0, x0, h, w = (int(c) for c in crop)
    if y0 + h > shape[0] or x0 + w > shape[1]:
        raise InputError(source, f"task.crop {list(crop)} does not fit in the frame of shape {shape}")
    return slice(y0, y0 + h), slice(x0, x0 + w)


def scaled_window(win: tuple[slice, slice], factor: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A window of the input's pixels as the window of the same area in an image resized by
    ``factor`` (of ``shape``)."""
    out = []
    for sl, n in zip(win, shape):
        a = min(int(round(sl.start * factor)), n - 1)
        out.append(slice(a, max(a + 1, min(int(round(sl.stop * factor)), n))))
    return tuple(out)  # type: ignore[return-value]


def pixels_with_evidence(valid: np.ndarray, offsets: Sequence[Sequence[int]]) -> np.ndarray:
    """Pixels that at least one valid pair touches (as either end)."""
    seen = np.zeros(valid.shape[1:], dtype=bool)
    for c, offset in enumerate(offsets):
        src, dst = shifted_slices(seen.shape, tuple(offset))  # empty where the offset exceeds the image
        v = valid[c][src]
        seen[src] |= v
        seen[dst] |= v
    return seen


def load_frame_input(dm: Any, ref: Any, crop: Sequence[int] | None, seed: int, sources: TaskSources) -> FrameInput:
    """Read a frame of the data module with its GT (if any), foreground and affinities (from
    ``sources``, built once per run by ``task_sources``).

    With ``crop`` (``task.crop``, [y0, x0, h, w]) everything is cut to that window. Where the affinities
    carry no evidence (pixels no valid pair touches, e.g. outside the crop the engine worked on), the
    foreground and the GT are cleared, so that only the covered part is segmented and scored.
    """
    image = dm.load_image(ref)
    win = crop_window(crop, image.shape, ref.raw_path)  # a bad crop fails before the sources read
    labels = dm.load_labels(ref) if ref.gt_path is not None else None
    if labels is not None and labels.size and int(labels.max()) > MAX_LABEL:
        raise InputError(ref.gt_path, f"GT of frame {ref.seq}/t{ref.frame:03d} holds ids up to {int(labels.max())}, "
                         f"above {MAX_LABEL} (CTC masks are uint16): renumber its objects 1, 2, ...")
    where = FrameData(dm.dataset, ref.seq, ref.frame, image.shape, labels, image, ref.stem, image.shape, int(seed))
    aff, factor = None, 1.0
    if sources.affinities is not None:
        aff = frame_affinities(sources.affinities, where)
        factor = aff.scale_factor
    # Affinities at a model's nucleus size: the foreground is made at that scale too.
    model_image = image if factor == 1.0 else rescale_image(image, factor)
    if factor != 1.0 and model_image.shape != aff.aff.shape[1:]:
        raise InputError(aff.source, f"affinities of shape {aff.aff.shape[1:]} for a frame of {image.shape} "
                         f"resized by {factor:g} ({model_image.shape})")
    model_labels = labels if labels is None or factor == 1.0 else labels_to_shape(labels, model_image.shape)
    model_where = replace(where, shape=model_image.shape, labels=model_labels, image=model_image)
    fg = frame_foreground(sources.foreground, model_where)
    input_fg = None if factor == 1.0 else frame_foreground(sources.foreground, where)
    frame_shape = image.shape
    if win is not None:
        # The window in the input's pixels, and the same window at the model's scale.
        model_win = win if factor == 1.0 else scaled_window(win, factor, model_image.shape)
        image, fg = image[win], fg[model_win]
        input_fg = None if input_fg is None else input_fg[win]
        labels = None if labels is None else labels[win]
        if aff is not None:
            sl = (slice(None), *model_win)
            valid = None if aff.valid is None else aff.valid[sl]
            aff = Affinities(aff.aff[sl], valid, aff.offsets, aff.source, aff.kind, factor)
    coverage = 1.0
    if aff is not None and aff.valid is not None:
        seen = pixels_with_evidence(aff.valid, aff.offsets)
        if not seen.any():
            window = "the whole frame" if win is None else f"the window {[int(c) for c in crop]} (task.crop)"
            raise InputError(aff.source, f"no valid affinity pair in {window}: nothing to segment or score "
                             "(were the affinities computed for another crop?)")
        coverage = float(seen.mean())
        if coverage < 1.0:
            fg = fg & seen
            seen_input = seen if factor == 1.0 else labels_to_shape(seen, image.shape)
            labels = None if labels is None else np.where(seen_input, labels, 0)
            input_fg = None if input_fg is None else input_fg & seen_input
    return FrameInput(ref.seq, ref.frame, image, labels, fg, aff, frame_shape, win, coverage, factor, input_fg)


def segment(inp: FrameInput, method: str, alpha: float, mws: MwsSpec | None = None) -> np.ndarray:
    """Instances of one frame at its input's shape: mutex watershed on its affinities (``mws``: the
    solver's settings), or connected components, at the affinities' scale."""
    if method == "cc":
        return inp.to_input(connected_components(inp.foreground))  # (CC runs at the input's scale: factor 1)
    if method != "mws":
        raise ValueError(f"task.method must be one of {METHODS}, got {method!r}")
    if mws is None:
        raise ValueError("method mws needs the task's mws settings")
    a = inp.affinities
    labels = mutex_watershed(
        a.aff, float(alpha), a.offsets, n_attractive=N_ATTRACTIVE, valid=a.valid, foreground=inp.foreground,
        strides=mws.strides, randomized_strides=mws.randomized_strides, seed=mws.seed, backend=mws.backend,
        source=a.source,
    )
    return inp.to_input(merge_small_segments(labels, mws.min_size), mws.min_size)


def score(
    labels: np.ndarray,
    gt: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    sparse_gt: bool = False,
) -> FrameScore:
    """SEG and detection counts of one frame (one overlap table for both)."""
    ov = overlap(gt, labels)
    return FrameScore(seg_from_overlap(ov), detection_from_overlap(ov, thresholds, sparse_gt))
