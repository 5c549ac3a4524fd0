"""Cell Tracking Challenge layout: reading raw frames and GT, writing results.

Layout: ``<root>/<dataset>/<seq>/tNNN.tif``, ``<root>/<dataset>/<seq>_GT/SEG/man_segNNN.tif`` and
results in ``<root>/<dataset>/<seq>_RES/maskNNN.tif``. Frame numbers have 3 digits, or 4 in long
sequences; readers accept both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from inpaintaff.io.files import atomic_path
from inpaintaff.utils.errors import InputError

_RAW_RE = re.compile(r"^t(\d{3,4})\.tif+$")
_GT_RE = re.compile(r"^man_seg(\d{3,4})\.tif+$")
# Files that look like images: reported when their names do not follow the CTC pattern.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
FOLDER_HINT = "a plain folder of images is read with `data=folder data.images=<folder>`"

log = logging.getLogger(__name__)
_warned: set[Path] = set()


def sequence_dir(root: str | Path, dataset: str, seq: str) -> Path:
    """Folder of the raw frames of one sequence."""
    return Path(root) / dataset / seq


def _find_frame(folder: Path, prefix: str, frame: int) -> Path | None:
    for digits in (3, 4):
        for ext in (".tif", ".tiff"):
            p = folder / f"{prefix}{frame:0{digits}d}{ext}"
            if p.exists():
                return p
    return None


def raw_path(root: str | Path, dataset: str, seq: str, frame: int) -> Path:
    """Path of raw frame ``frame``; a clear error if it does not exist."""
    folder = sequence_dir(root, dataset, seq)
    if not folder.is_dir():
        raise InputError(folder, "sequence folder not found (check data.root, data.dataset and the sequence)")
    p = _find_frame(folder, "t", frame)
    if p is None:
        problem = f"raw frame {frame} of sequence {seq} not found"
        others = unmatched_images(folder)
        if others:
            problem += (f" (the folder holds {len(others)} image file(s) not named tNNN.tif with 3 or 4 digits, "
                        f"e.g. {_examples(others)}; {FOLDER_HINT})")
        raise InputError(folder / f"t{frame:03d}.tif", problem)
    return p


def gt_seg_path(root: str | Path, dataset: str, seq: str, frame: int) -> Path:
    """Path of the GT segmentation of ``frame``; a clear error if it does not exist."""
    folder = Path(root) / dataset / f"{seq}_GT" / "SEG"
    p = _find_frame(folder, "man_seg", frame) if folder.is_dir() else None
    if p is None:
        raise InputError(folder / f"man_seg{frame:03d}.tif", f"GT segmentation of frame {frame} not found")
    return p


def res_path(root: str | Path, dataset: str, seq: str, frame: int, digits: int = 3) -> Path:
    """Path where the result mask of ``frame`` belongs (CTC ``_RES`` layout)."""
    return Path(root) / dataset / f"{seq}_RES" / f"mask{frame:0{digits}d}.tif"


def unmatched_images(folder: Path, pattern: re.Pattern = _RAW_RE) -> list[str]:
    """Names of the image-like files (.tif, .tiff, .png) in ``folder`` that ``pattern`` does not match."""
    return sorted(
        f.name for f in folder.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES and not pattern.match(f.name) and not f.name.startswith(".")
    )


def _examples(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def list_raw_frames(root: str | Path, dataset: str, seq: str) -> list[int]:
    """Frame numbers of the raw frames present in a sequence folder.

    Image files whose names do not follow ``tNNN.tif`` (3 or 4 digits) are not frames: a warning names
    them; a folder with such files and no frame at all is an error.
    """
    folder = sequence_dir(root, dataset, seq)
    if not folder.is_dir():
        raise InputError(folder, "sequence folder not found (check data.root, data.dataset and the sequence)")
    frames = sorted(int(m.group(1)) for f in folder.iterdir() if (m := _RAW_RE.match(f.name)))
    others = unmatched_images(folder)
    if others and not frames:
        raise InputError(folder, f"no raw frame found: the CTC layout expects frames named tNNN.tif (3 or 4 digits, "
                                 f"e.g. t000.tif, t0123.tif), but this folder holds {len(others)} image file(s) "
                                 f"with other names (e.g. {_examples(others)}); {FOLDER_HINT}")
    if others and folder not in _warned:
        _warned.add(folder)
        log.warning("%s: %d image file(s) skipped, not named tNNN.tif (3 or 4 digits) as the CTC layout expects: %s",
                    folder, len(others), _examples(others))
    return frames


def list_gt_frames(root: str | Path, dataset: str, seq: str) -> list[int]:
    """Frame numbers that have a GT segmentation (empty if there is no GT folder)."""
    folder = Path(root) / dataset / f"{seq}_GT" / "SEG"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for f in folder.iterdir() if (m := _GT_RE.match(f.name)))


def read_2d(path: str | Path) -> np.ndarray:
    """Read a 2D TIFF as stored; missing, unreadable, empty, RGB or non-2D files are errors."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        arr = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(path, f"cannot read TIFF ({exc})") from exc
    arr = np.squeeze(arr)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise InputError(path, f"expected a 2D grayscale image, got an RGB(A) image of shape {arr.shape}")
    if arr.ndim != 2:
        raise InputError(path, f"expected a 2D image, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(path, "image is empty")
    return arr


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2D uint8/uint16/float frame as float32; NaN, infinite or constant images are errors."""
    return image_values(read_2d(path), path)


def image_values(arr: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """A 2D image's values as float32; another dtype, NaN, infinite or constant values are errors
    naming ``path``."""
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool):
        raise InputError(path, f"unsupported dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(path, "image contains NaN or infinite values")
    if arr.min() == arr.max():
        raise InputError(path, f"image is constant (value {arr.min():g}): nothing to segment")
    return arr


def read_labels(path: str | Path) -> np.ndarray:
    """Read a 2D integer instance label image (0 = background) as int64."""
    return label_values(read_2d(path), path)


def label_values(arr: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """An instance label image's values as int64; fractions, NaN or negative values are errors
    naming ``path``."""
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise InputError(path, f"labels must be integers, got non-integer {arr.dtype} values")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InputError(path, f"labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise InputError(path, "labels must be non-negative")
    return arr


def write_labels(path: str | Path, labels: np.ndarray) -> Path:
    """Write an instance label image as uint16 TIFF, atomically (CTC result format)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(path, f"labels to write must be 2D, got shape {labels.shape}")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, _uint16_labels(labels, path), compression="zlib")
    return path


def write_label_stack(path: str | Path, planes: Iterable[np.ndarray], shape: tuple[int, int, int],
                      axes: str = "QYX") -> Path:
    """Write 2D label planes, one at a time (only one is held), as one uint16 stack TIFF of ``shape``
    with ``axes`` (``TYX`` a time-lapse, ``ZYX`` a z-stack), atomically."""
    path = Path(path)

    def pages() -> Iterator[np.ndarray]:
        for i, plane in enumerate(planes):
            plane = np.asarray(plane)
            if plane.shape != tuple(shape[1:]):
                raise InputError(path, f"label plane {i} has shape {plane.shape}, the stack's planes {shape[1:]}")
            yield _uint16_labels(plane, path)

    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp) as tif:
        tif.write(pages(), shape=tuple(shape), dtype=np.uint16, photometric="minisblack", compression="zlib",
                  metadata={"axes": axes})
    return path


def _uint16_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(path, f"labels to write must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        raise InputError(path, f"labels must lie in [0, 65535] for uint16 CTC masks, max is {labels.max()}")
    return labels.astype(np.uint16)


def write_image(path: str | Path, image: np.ndarray, metadata: dict | None = None) -> Path:
    """Write a float or integer array as TIFF (with optional JSON metadata), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(image), metadata=metadata, compression="zlib")
    return path
