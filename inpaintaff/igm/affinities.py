"""Affinities from patch leaves (docs/method.md §4), their accumulation over sliding patches, and files.

On-disk layout (read by the segment task through ``read_affinities``)::

    <out>/<dataset>/<seq>_AFF/affNNN.tif      one frame, NNN = frame number (3 digits)
        series 0: float32 (12, H, W)  mean affinity over the patches that saw a pair, 0 if none
        series 1: uint8   (12, H, W)  1 where at least one patch saw the pair (valid)
        JSON metadata of series 0: {"offsets": [[dy, dx], ...], "axes": "CYX", ...run info}

Channel c relates pixel (y, x) to (y + dy_c, x + dx_c); 1 = same object (same leaf).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
import torch

from inpaintaff.offsets import OFFSETS, label_affinities
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.io import atomic_path


def aff_path(out: str | Path, dataset: str, seq: str, frame: int) -> Path:
    """Where the affinities of one frame live."""
    return Path(out) / dataset / f"{seq}_AFF" / f"aff{frame:03d}.tif"


def patch_affinities(
    leaf_ids: torch.Tensor, offsets: Sequence[Sequence[int]] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Affinities of leaf labellings (P, h, w): (aff bool (P, C, h, w), valid bool (C, h, w)).

    aff[p, c, y, x] = leaf (y, x) == leaf (y + dy, x + dx); pairs leaving the patch are invalid.
    """
    aff, _ = label_affinities(leaf_ids, offsets)
    _, valid = label_affinities(leaf_ids.new_zeros(leaf_ids.shape[1:]), offsets)
    return aff, valid


class AffinityAccumulator:
    """Sums and counts of patch affinities over one frame (CPU, numpy).

    Sums of 0/1 values are whole numbers, exact in float32 up to 2**24 patches per pair, so the
    result does not depend on the order in which patches arrive (or on which rank saw them).
    """

    def __init__(self, shape: tuple[int, int], n_channels: int = len(OFFSETS)):
        self.shape = tuple(int(s) for s in shape)
        self.sums = np.zeros((n_channels, *self.shape), dtype=np.float32)
        self.counts = np.zeros((n_channels, *self.shape), dtype=np.int32)

    def add(self, aff: np.ndarray, valid: np.ndarray, y: int, x: int) -> None:
        """Add one patch's affinities (C, h, w) at its top-left corner (y, x)."""
        _, h, w = aff.shape
        sl = (slice(None), slice(y, y + h), slice(x, x + w))
        self.sums[sl] += aff.astype(np.float32) * valid
        self.counts[sl] += valid

    def merge(self, sums: np.ndarray, counts: np.ndarray) -> None:
        """Add another accumulator's sums and counts (e.g. another rank's, or a saved partial)."""
        self.sums += sums
        self.counts += counts

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(aff float32 (C, H, W), valid bool (C, H, W)); aff is 0 where no patch saw a pair."""
        valid = self.counts > 0
        aff = np.divide(self.sums, self.counts, out=np.zeros_like(self.sums), where=valid)
        return aff.astype(np.float32), valid


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
