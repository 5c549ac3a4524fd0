"""Affinity files: one TIFF per frame, written by ``task=inpaintaff`` (the engine), ``task=affnet``
(AFFNET, the DISTILL student) and read by the segmentation.

    <out>/<dataset>/<seq>_AFF/affNNN.tif      one frame, NNN = frame number (3 digits)
    <out>/<dataset>/AFF/<name>.tif            one image of a plain folder, named by its file stem
        series 0: float32 (12, H, W)  mean affinity over the patches that saw a pair, 0 if none
        series 1: uint8   (12, H, W)  1 where at least one patch saw the pair (valid)
        JSON metadata of series 0: {"offsets": [[dy, dx], ...], "axes": "CYX", ...run info}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from inpaintaff.io.files import atomic_path
from inpaintaff.offsets import OFFSETS
from inpaintaff.utils.errors import InputError

# The one place the affinity layout is written (``task.*.pattern: null`` means these).
AFF_PATTERN = "{dataset}/{seq}_AFF/aff{frame:03d}.tif"  # a frame of a CTC sequence
AFF_STEM_PATTERN = "{dataset}/AFF/{stem}.tif"  # an image of a plain folder, by its file stem


def aff_path(out: str | Path, dataset: str, seq: str, frame: int, stem: str | None = None) -> Path:
    """Where the affinities of one frame live: by frame number in a CTC sequence, by file stem for an
    image of a plain folder (``stem``), so that every split and run names an image's file alike."""
    pattern = AFF_PATTERN if stem is None else AFF_STEM_PATTERN
    return Path(out) / pattern.format(dataset=dataset, seq=seq, frame=frame, stem=stem)


def write_affinities(
    path: str | Path,
    aff: np.ndarray,
    valid: np.ndarray,
    offsets: Sequence[Sequence[int]] | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write one frame's affinities and validity as a two-series TIFF, atomically."""
    offsets = [list(map(int, o)) for o in (OFFSETS if offsets is None else offsets)]
    path = Path(path)
    if aff.ndim != 3 or aff.shape != valid.shape or aff.shape[0] != len(offsets):
        raise InputError(path, f"affinities {aff.shape} / valid {valid.shape} do not match {len(offsets)} offsets")
    meta = {"offsets": offsets, "axes": "CYX", **(metadata or {})}
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp) as tif:
        tif.write(aff.astype(np.float32), metadata=meta, compression="zlib")
        tif.write(valid.astype(np.uint8), metadata={"axes": "CYX", "content": "valid"}, compression="zlib")
    return path


def read_affinities(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Read a file written by ``write_affinities``: (aff float32, valid bool, offsets)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "affinity file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.series) < 2:
                raise InputError(path, "not an affinity file (expected two series: affinities and validity)")
            aff = tif.series[0].asarray()
            valid = tif.series[1].asarray().astype(bool)
            meta = json.loads(tif.pages[0].description)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"cannot read affinity TIFF ({exc})") from exc
    offsets = meta.get("offsets") if isinstance(meta, dict) else None
    if offsets is None or aff.ndim != 3 or aff.shape[0] != len(offsets) or aff.shape != valid.shape:
        raise InputError(path, f"affinity file without matching offsets metadata (shape {aff.shape})")
    return aff.astype(np.float32), valid, [list(map(int, o)) for o in offsets]


def read_affinity_metadata(path: str | Path) -> dict:
    """The JSON metadata of an affinity file (offsets, engine settings, run statistics)."""
    try:
        with tifffile.TiffFile(path) as tif:
            meta = json.loads(tif.pages[0].description)
    except Exception as exc:  # tifffile and json raise many kinds for damaged or foreign files
        raise InputError(path, f"cannot read the metadata of this affinity file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise InputError(path, "affinity file without JSON metadata")
    return meta


@dataclass
class Affinities:
    """Affinities (C, H, W), the pairs that carry evidence, and their offsets."""

    aff: np.ndarray
    valid: np.ndarray | None
    offsets: list[list[int]]
    source: Path | None = None
    # What made them, from the file's metadata ("affnet", "inpaintaff", ...), if it says.
    kind: str | None = None
    # Model scale = input scale * scale_factor: files stay at the model's nucleus size.
    scale_factor: float = 1.0


def read_affinity_file(path: str | Path) -> Affinities:
    """Read one frame's affinities (a file written by ``write_affinities``)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "affinity file not found (check task.affinities.dir and .pattern)")
    aff, valid, offsets = read_affinities(path)
    aff = np.asarray(aff)
    if aff.ndim != 3:
        raise InputError(path, f"affinities must have shape (C, H, W), got {aff.shape}")
    valid = None if valid is None else np.asarray(valid, bool)
    try:
        meta = read_affinity_metadata(path)
    except Exception:  # a file without JSON metadata
        meta = {}
    kind = meta.get("source")
    return Affinities(aff, valid, [list(o) for o in offsets], path, str(kind) if kind else None,
                      float(meta.get("scale_factor") or 1.0))
