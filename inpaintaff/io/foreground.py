"""Foreground probability files: float32 TIFFs of values in [0, 1], one per frame, written by
``task=foreground`` (FGNET) and thresholded by the segmentation (``task.foreground.source=dir``).

    <out>/<dataset>/<seq>_FG/fgNNN.tif      float32 (H, W); JSON metadata: {"source": "fgnet", "ckpt_sha1": ...}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from inpaintaff.io.ctc import read_2d, write_image
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.resize import resize, scaled_shape

# The one place the foreground layout is written (``task.*.foreground.pattern: null`` means these).
FG_PATTERN = "{dataset}/{seq}_FG/fg{frame:03d}.tif"  # a frame of a CTC sequence
FG_STEM_PATTERN = "{dataset}/FG/{stem}.tif"  # an image of a plain folder, by its file stem


def foreground_path(out_dir: str | Path, dataset: str, seq: str, frame: int, stem: str | None = None) -> Path:
    """Where the foreground probability of a frame is written (``<dataset>/FG/<stem>.tif`` for an image
    of a plain folder)."""
    pattern = FG_PATTERN if stem is None else FG_STEM_PATTERN
    return Path(out_dir) / pattern.format(dataset=dataset, seq=seq, frame=frame, stem=stem)


def read_probability(
    prob: np.ndarray | str | Path, shape: tuple[int, int] | None = None, frame_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """A foreground probability map (float32 in [0, 1], or bool as it is) from an array or a TIFF file,
    checked: 2D, numbers, finite, within [0, 1].

    ``shape``, if given, is the image shape the map must have. A file written at another model's
    scale (its metadata's ``scale_factor``) of a frame of ``frame_shape`` is resampled (linearly)
    to ``shape`` first.
    """
    source = None
    if isinstance(prob, (str, Path)):
        source = Path(prob)
        prob = read_2d(source)
    prob = np.squeeze(np.asarray(prob))
    if prob.ndim != 2:
        raise InputError(source, f"foreground probabilities must be 2D, got shape {prob.shape}")
    if shape is not None and prob.shape != tuple(shape) and source is not None and frame_shape is not None:
        factor = float(read_foreground_metadata(source).get("scale_factor") or 1.0)
        if prob.shape == scaled_shape(frame_shape, factor) and np.issubdtype(prob.dtype, np.floating):
            prob = resize(prob.astype(np.float32), tuple(shape), order=1)
    if shape is not None and prob.shape != tuple(shape):
        raise InputError(source, f"foreground of shape {prob.shape} does not match the image shape {tuple(shape)}")
    if prob.dtype == bool:
        return prob.copy()
    if not (np.issubdtype(prob.dtype, np.floating) or np.issubdtype(prob.dtype, np.integer)):
        raise InputError(source, f"foreground probabilities must be numbers, got dtype {prob.dtype}")
    prob = prob.astype(np.float32)
    if not np.isfinite(prob).all():
        raise InputError(source, "foreground probabilities contain NaN or infinite values")
    if prob.min() < 0 or prob.max() > 1:
        raise InputError(
            source, f"foreground probabilities must lie in [0, 1], got [{prob.min():g}, {prob.max():g}]"
        )
    return prob


def foreground_from_probability(
    prob: np.ndarray | str | Path, threshold: float = 0.5, shape: tuple[int, int] | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Binary foreground ``prob > threshold`` from an array or a TIFF file of values in [0, 1]
    (read and checked by :func:`read_probability`, with its ``shape`` and ``frame_shape``)."""
    prob = read_probability(prob, shape, frame_shape)
    if prob.dtype == bool:
        return prob
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    return prob > threshold


def write_foreground(path: str | Path, prob: np.ndarray, metadata: dict | None = None) -> Path:
    """Write one frame's foreground probabilities (float32) with JSON ``metadata``, atomically."""
    return write_image(path, np.asarray(prob, dtype=np.float32), metadata=metadata or {})


def read_foreground_metadata(path: str | Path) -> dict:
    """The JSON metadata of a foreground file ({} for files written without it)."""
    try:
        with tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata
    except Exception as exc:  # tifffile raises many kinds for damaged or foreign files
        raise InputError(path, f"cannot read this foreground file ({type(exc).__name__}: {exc})") from exc
    return dict(meta[0]) if meta else {}
