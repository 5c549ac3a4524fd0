"""Where a frame's affinities and foreground come from (``task.affinities.source``,
``task.foreground.source``): two plug points, each a built-in name or ``{_target_: your.Class, ...}``.

Affinities (:class:`AffinitySource`): ``labels`` (from the GT labelling, plus seeded Gaussian noise:
the correctness check) or ``dir`` (per-frame affinity TIFFs written by ``task=inpaintaff`` or AFFNET).
Foreground (:class:`ForegroundSource`): ``truefg`` (from GT, docs/method.md §6), ``dir``/``file``
(probability TIFFs, e.g. from ``task=foreground``, thresholded), ``intensity`` (the normalised image
thresholded) or ``all``. A source is built once per run (``task_sources``) and called once per frame with its
:class:`FrameData`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from inpaintaff.io.affinities import AFF_PATTERN, Affinities, aff_path, read_affinity_file
from inpaintaff.io.foreground import FG_PATTERN, foreground_from_probability, foreground_path
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.settings import AffinitySpec, SegmentSettings
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.plugins import instantiate_target, is_target


@dataclass(frozen=True)
class FrameData:
    """What a source may read of one frame: where it is (``dataset``, ``seq``, ``frame``, and ``stem``
    for an image of a plain folder), the ``shape`` its answer must have (the model's scale when
    frames are resized), its GT ``labels`` and normalised ``image`` at that shape (None where absent),
    the input frame's own ``frame_shape``, and the run's ``seed``."""

    dataset: str
    seq: str
    frame: int
    shape: tuple[int, int]
    labels: np.ndarray | None = None
    image: np.ndarray | None = None
    stem: str | None = None
    frame_shape: tuple[int, int] | None = None
    seed: int = 0


@runtime_checkable
class ForegroundSource(Protocol):
    """A frame's foreground: ``source(frame)`` returns a boolean array of ``frame.shape``."""

    def __call__(self, frame: FrameData) -> np.ndarray: ...


@runtime_checkable
class AffinitySource(Protocol):
    """A frame's affinities: ``source(frame)`` returns :class:`inpaintaff.io.affinities.Affinities`
    whose image shape is ``frame.shape`` (or files at a model's scale, ``scale_factor`` != 1)."""

    def __call__(self, frame: FrameData) -> Affinities: ...


def frame_file(folder: str | Path, pattern: str | None, *, dataset: str, seq: str, frame: int, stem: str | None,
               kind: str) -> Path:
    """A frame's affinity (``kind="aff"``) or foreground (``"fg"``) file below ``folder``: where the tasks
    write it (an image of a plain folder by its ``stem``) for ``pattern`` None (or the tasks' own
    pattern, written out), else ``pattern`` filled with {dataset}, {seq}, {frame} and {stem}."""
    default, layout = {"aff": (AFF_PATTERN, aff_path), "fg": (FG_PATTERN, foreground_path)}[kind]
    if pattern is None or pattern == default:
        return layout(folder, dataset, seq, frame, stem)
    return Path(folder) / pattern.format(dataset=dataset, seq=seq, frame=frame, stem=stem)


def fill_gaps(labels: np.ndarray) -> np.ndarray:
    """GT labels with the one-pixel gaps that TRUEFG closes given to the nearest segment.

    So that affinities from labels describe a partition of TRUEFG into the GT objects (the gap
    pixels would otherwise form little segments of their own, "label 0" inside the foreground).
    """
    gaps = true_foreground(labels) & (labels == 0)
    if not gaps.any():
        return labels
    _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return np.where(gaps, labels[iy, ix], labels)


def frame_seed(seed: int, seq: str, frame: int) -> int:
    """A per-frame seed that does not depend on the order frames are processed in."""
    return (int(seed) * 1_000_003 + zlib.crc32(f"{seq}/{frame}".encode())) % (2**32)


@dataclass(frozen=True)
class TrueForeground:
    """TRUEFG: the GT labels' foreground with one-pixel gaps between objects closed."""

    def __call__(self, frame: FrameData) -> np.ndarray:
        if frame.labels is None:
            raise InputError(None, f"frame {frame.seq}/{frame.frame} has no GT: foreground.source=truefg needs "
                             "GT labels")
        return true_foreground(frame.labels)


@dataclass(frozen=True)
class ProbabilityForeground:
    """Probability TIFFs below ``dir`` (``task=foreground``'s layout, or ``pattern``) above ``threshold``."""

    dir: str
    pattern: str | None = None
    threshold: float = 0.5

    def __call__(self, frame: FrameData) -> np.ndarray:
        path = frame_file(self.dir, self.pattern, dataset=frame.dataset, seq=frame.seq, frame=frame.frame,
                          stem=frame.stem, kind="fg")
        return foreground_from_probability(path, float(self.threshold), shape=frame.shape,
                                           frame_shape=frame.frame_shape)


@dataclass(frozen=True)
class IntensityForeground:
    """The normalised image above ``threshold``."""

    threshold: float = 0.5

    def __call__(self, frame: FrameData) -> np.ndarray:
        if frame.image is None:
            raise ValueError("foreground.source=intensity needs the image")
        return np.asarray(frame.image) > float(self.threshold)


@dataclass(frozen=True)
class AllForeground:
    """Every pixel."""

    def __call__(self, frame: FrameData) -> np.ndarray:
        return np.ones(frame.shape, dtype=bool)


@dataclass(frozen=True)
class LabelAffinities:
    """Affinities of the GT labelling (gaps given to the nearest object) plus Gaussian ``noise``,
    seeded per frame: the correctness check of the segmentation."""

    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.noise < 0:
            raise ValueError(f"task.affinities.noise must be >= 0, got {self.noise}")

    def __call__(self, frame: FrameData) -> Affinities:
        if frame.labels is None:
            raise InputError(None, f"frame {frame.seq}/{frame.frame} has no GT: affinities.source=labels needs "
                             "GT labels")
        offsets = [list(o) for o in OFFSETS]
        aff, valid = affinities_from_labels(fill_gaps(frame.labels), offsets)
        if self.noise > 0:
            rng = np.random.default_rng(frame_seed(frame.seed, frame.seq, frame.frame))
            aff += rng.normal(0.0, self.noise, aff.shape).astype(np.float32)
            np.clip(aff, 0.0, 1.0, out=aff)
        return Affinities(aff, valid, offsets)


@dataclass(frozen=True)
class AffinityFiles:
    """Per-frame affinity TIFFs below ``dir`` (the tasks' layout, or ``pattern``). With ``accept_scaled``,
    files at a model's scale (``scale_factor`` in their metadata) are taken as they are; otherwise
    their image shape must be the frame's."""

    dir: str
    pattern: str | None = None
    accept_scaled: bool = True

    def __call__(self, frame: FrameData) -> Affinities:
        path = frame_file(self.dir, self.pattern, dataset=frame.dataset, seq=frame.seq, frame=frame.frame,
                          stem=frame.stem, kind="aff")
        out = read_affinity_file(path)
        if self.accept_scaled and out.scale_factor != 1.0:
            return out
        if out.aff.shape[1:] != tuple(frame.shape):
            raise InputError(path, f"affinities of image shape {out.aff.shape[1:]} but the frame is "
                             f"{tuple(frame.shape)}")
        return out


FOREGROUND_SOURCES = ("truefg", "dir", "file", "intensity", "all")
AFFINITY_SOURCES = ("labels", "dir")
_FOREGROUND_CONTRACT = ("a foreground source is a callable taking a FrameData and returning a boolean array of "
                        "frame.shape (inpaintaff.segment.sources.ForegroundSource)")
_AFFINITY_CONTRACT = ("an affinity source is a callable taking a FrameData and returning Affinities "
                      "(inpaintaff.segment.sources.AffinitySource)")


def build_foreground(source: str | Mapping[str, Any], *, dir: str | Path | None = None, pattern: str | None = None,
                     threshold: float = 0.5, key: str = "task.foreground.source") -> ForegroundSource:
    """The foreground source ``source`` names (``dir``, ``pattern`` and ``threshold`` are the built-in
    ones' settings), or the class of a ``{_target_: ..., param: value}`` mapping built with its parameters."""
    if is_target(source):
        return instantiate_target(source, key, ForegroundSource, _FOREGROUND_CONTRACT)
    if source == "truefg":
        return TrueForeground()
    if source in ("dir", "file"):
        if not dir:
            raise ValueError(f"{key}={source} needs task.foreground.dir")
        return ProbabilityForeground(str(dir), pattern, float(threshold))
    if source == "intensity":
        return IntensityForeground(float(threshold))
    if source == "all":
        return AllForeground()
    raise ValueError(f"{key} must be one of {FOREGROUND_SOURCES} or a mapping with _target_, got {source!r}")


def build_affinities(spec: AffinitySpec, key: str = "task.affinities.source") -> AffinitySource:
    """The affinity source ``spec.source`` names (``labels`` with ``spec.noise``, ``dir`` with
    ``spec.dir``/``spec.pattern``), or the class of a ``{_target_: ..., param: value}`` mapping."""
    if is_target(spec.source):
        return instantiate_target(spec.source, key, AffinitySource, _AFFINITY_CONTRACT)
    if spec.source == "labels":
        return LabelAffinities(float(spec.noise))
    if spec.source == "dir":
        if not spec.dir:
            raise ValueError(f"{key}=dir needs task.affinities.dir")
        return AffinityFiles(str(spec.dir), spec.pattern)
    raise ValueError(f"{key} must be one of {AFFINITY_SOURCES} or a mapping with _target_, got {spec.source!r}")


def frame_foreground(source: ForegroundSource, frame: FrameData) -> np.ndarray:
    """``source``'s foreground of ``frame``, checked: an array of ``frame.shape`` (as bool)."""
    fg = np.asarray(source(frame))
    if fg.shape != tuple(frame.shape):
        raise ValueError(f"the foreground source {type(source).__name__} returned shape {fg.shape} for frame "
                         f"{frame.seq}/{frame.frame}, expected {tuple(frame.shape)}")
    return fg.astype(bool, copy=False)


def frame_affinities(source: AffinitySource, frame: FrameData) -> Affinities:
    """``source``'s affinities of ``frame``, checked: :class:`Affinities` with one channel per offset."""
    aff = source(frame)
    if not isinstance(aff, Affinities):
        raise TypeError(f"the affinity source {type(source).__name__} returned a {type(aff).__name__} for frame "
                        f"{frame.seq}/{frame.frame}; {_AFFINITY_CONTRACT}")
    if aff.aff.ndim != 3 or aff.aff.shape[0] != len(aff.offsets):
        raise ValueError(f"the affinity source {type(source).__name__} returned affinities of shape "
                         f"{aff.aff.shape} with {len(aff.offsets)} offsets for frame {frame.seq}/{frame.frame}: "
                         "expected (offsets, H, W)")
    if aff.scale_factor == 1.0 and aff.aff.shape[1:] != tuple(frame.shape):
        raise ValueError(f"the affinity source {type(source).__name__} returned image shape {aff.aff.shape[1:]} for "
                         f"frame {frame.seq}/{frame.frame}, expected {tuple(frame.shape)}")
    return aff


@dataclass(frozen=True)
class TaskSources:
    """A segmentation task's foreground and affinity sources, built once for all its frames
    (``affinities`` None for ``method: cc``)."""

    foreground: ForegroundSource
    affinities: AffinitySource | None


def task_sources(task: SegmentSettings) -> TaskSources:
    """The sources ``task.foreground`` and ``task.affinities`` say (built-in names or ``_target_`` classes)."""
    f = task.foreground
    fg = build_foreground(f.source, dir=f.dir, pattern=f.pattern, threshold=f.threshold)
    return TaskSources(fg, build_affinities(task.affinities) if task.method == "mws" else None)
