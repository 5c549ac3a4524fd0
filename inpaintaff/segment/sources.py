"""Where a frame's affinities and foreground come from (``task.affinities``, ``task.foreground``).

Affinities: ``labels`` (from the GT labelling, plus seeded Gaussian noise: the correctness check)
or ``dir`` (per-frame affinity TIFFs written by ``task=inpaintaff`` or AFFNET).
Foreground: ``truefg`` (from GT, docs/method.md §6), ``dir``/``file`` (probability TIFFs, e.g. from
``task=foreground``, thresholded), ``intensity`` (the normalised image thresholded) or ``all``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from scipy import ndimage

from inpaintaff.io.affinities import AFF_PATTERN, Affinities, aff_path, read_affinity_file
from inpaintaff.io.foreground import FG_PATTERN, foreground_from_probability, foreground_path
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.segment.settings import AffinitySpec
from inpaintaff.utils.errors import InputError

AFFINITY_SOURCES = ("labels", "dir")
FOREGROUND_SOURCES = ("truefg", "dir", "file", "intensity", "all")


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


def affinities_for_frame(
    spec: AffinitySpec,
    *,
    dataset: str,
    seq: str,
    frame: int,
    labels: np.ndarray | None,
    shape: tuple[int, int],
    seed: int = 0,
    resized: bool = False,
    stem: str | None = None,
) -> Affinities:
    """The affinities of one frame as ``spec`` (``task.affinities``) says; with ``resized``, files
    at a model's scale (``scale_factor`` in their metadata) are accepted, else their shape must be
    the frame's."""
    if spec.source == "labels":
        if labels is None:
            raise InputError(None, f"frame {seq}/{frame} has no GT: affinities.source=labels needs GT labels")
        offsets = [list(o) for o in OFFSETS]
        aff, valid = affinities_from_labels(fill_gaps(labels), offsets)
        if spec.noise < 0:
            raise ValueError(f"task.affinities.noise must be >= 0, got {spec.noise}")
        if spec.noise > 0:
            rng = np.random.default_rng(frame_seed(seed, seq, frame))
            aff += rng.normal(0.0, spec.noise, aff.shape).astype(np.float32)
            np.clip(aff, 0.0, 1.0, out=aff)
        return Affinities(aff, valid, offsets)
    if spec.source == "dir":
        if not spec.dir:
            raise ValueError("task.affinities.source=dir needs task.affinities.dir")
        path = frame_file(spec.dir, spec.pattern, dataset=dataset, seq=seq, frame=frame, stem=stem, kind="aff")
        out = read_affinity_file(path)
        if resized and out.scale_factor != 1.0:
            return out
        if out.aff.shape[1:] != tuple(shape):
            raise InputError(path, f"affinities of image shape {out.aff.shape[1:]} but the frame is {tuple(shape)}")
        return out
    raise ValueError(f"task.affinities.source must be one of {AFFINITY_SOURCES}, got {spec.source!r}")


def foreground_for_frame(
    source: str,
    *,
    dataset: str,
    seq: str,
    frame: int,
    labels: np.ndarray | None,
    shape: tuple[int, int],
    folder: str | Path | None = None,
    pattern: str | None = None,
    threshold: float = 0.5,
    image: np.ndarray | None = None,
    frame_shape: tuple[int, int] | None = None,
    stem: str | None = None,
) -> np.ndarray:
    """The binary foreground of one frame: ``truefg`` (GT, closed gaps), ``dir``/``file`` (the
    probability TIFF below ``folder`` above ``threshold``), ``intensity`` (the normalised
    ``image`` above ``threshold``) or ``all``."""
    if source == "truefg":
        if labels is None:
            raise InputError(None, f"frame {seq}/{frame} has no GT: foreground.source=truefg needs GT labels")
        return true_foreground(labels)
    if source in ("dir", "file"):
        if not folder:
            raise ValueError(f"task.foreground.source={source} needs task.foreground.dir")
        path = frame_file(folder, pattern, dataset=dataset, seq=seq, frame=frame, stem=stem, kind="fg")
        return foreground_from_probability(path, float(threshold), shape=shape, frame_shape=frame_shape)
    if source == "intensity":
        if image is None:
            raise ValueError("foreground.source=intensity needs the image")
        return np.asarray(image) > float(threshold)
    if source == "all":
        return np.ones(shape, dtype=bool)
    raise ValueError(f"task.foreground.source must be one of {FOREGROUND_SOURCES}, got {source!r}")
