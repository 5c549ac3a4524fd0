"""A plain folder of images (a user's own data): finding the files, reading one channel of each.

Images are matched by glob patterns (TIFF and PNG by default); masks, when given, live in another
folder under the same file stem (``img_a.tif`` ↔ ``img_a.tif`` or ``img_a.png``), or under the Cell
Tracking Challenge's GT names (``man_seg013.tif`` ↔ ``t013.tif``: ``--masks <seq>_GT/SEG`` as it comes).
Every output of an image is named by its stem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from inpaintaff.io.ctc import image_values, label_values
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.tif", "*.tiff", "*.png")
_IMAGE_SUFFIXES = {".tif", ".tiff", ".png"}
_CTC_MASK = re.compile(r"man_seg(\d+)")


def _image_of_mask(stem: str, names: dict[str, Path]) -> str | None:
    """The image stem a mask stem belongs to: the same stem, or ``tNNN`` for the CTC's ``man_segNNN``."""
    if stem in names:
        return stem
    ctc = _CTC_MASK.fullmatch(stem)
    if ctc and f"t{ctc.group(1)}" in names:
        return f"t{ctc.group(1)}"
    return None


@dataclass(frozen=True)
class FolderImage:
    """One image of a folder, named by its file stem, with its mask if there is one."""

    name: str
    path: Path
    mask_path: Path | None = None


def _patterns(pattern: str | Sequence[str] | None) -> list[str]:
    if pattern is None:
        return list(DEFAULT_PATTERNS)
    return [pattern] if isinstance(pattern, str) else [str(p) for p in pattern]


def list_folder(images: str | Path, pattern: str | Sequence[str] | None = None,
                masks: str | Path | None = None) -> list[FolderImage]:
    """The images of a folder matching ``pattern`` (a glob or a list of globs), sorted by name,
    each with its mask from ``masks`` (same stem) when that folder is given.

    A missing or empty folder, a pattern that matches nothing, two images of one stem, and a mask
    without its image are errors naming the folder or file.
    """
    folder = Path(images).expanduser()
    if not folder.exists():
        raise InputError(folder, "image folder not found (data.images)")
    if not folder.is_dir():
        raise InputError(folder, "data.images must be a folder of images; this is a file (put it in a folder, "
                         "or give its folder with data.pattern=<its name>)")
    files = sorted({p for pat in _patterns(pattern) for p in folder.glob(pat) if p.is_file()})
    if not files:
        present = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not present:
            raise InputError(folder, "image folder is empty")
        raise InputError(folder, f"no file matches data.pattern {_patterns(pattern)} "
                         f"({len(present)} other file(s), e.g. {present[:3]})")
    by_name: dict[str, Path] = {}
    for f in files:
        if f.stem in by_name:
            raise InputError(f, f"two images named {f.stem!r} ({by_name[f.stem].name} and {f.name}): outputs are "
                             "named by the file stem, so stems must be unique (narrow data.pattern)")
        by_name[f.stem] = f
    mask_of: dict[str, Path] = {}
    if masks is not None:
        mask_dir = Path(masks).expanduser()
        if not mask_dir.is_dir():
            raise InputError(mask_dir, "mask folder not found (data.masks)")
        ctc_unmatched: list[Path] = []
        for m in sorted(p for p in mask_dir.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES):
            name = _image_of_mask(m.stem, by_name)
            if name is None and _CTC_MASK.fullmatch(m.stem):
                ctc_unmatched.append(m)  # a CTC GT folder covers the whole sequence, the folder some frames
                continue
            if name is None:
                raise InputError(m, f"mask without its image: no image named {m.stem!r} in {folder} "
                                 f"matching {_patterns(pattern)}")
            if name in mask_of:
                raise InputError(m, f"two masks of image {name!r} ({mask_of[name].name} and {m.name})")
            mask_of[name] = m
        if ctc_unmatched and not mask_of:
            raise InputError(ctc_unmatched[0], f"no CTC GT mask (man_segNNN) of the folder's images (tNNN) in "
                             f"{folder}: {len(ctc_unmatched)} mask(s), none of whose frames is there")
        if ctc_unmatched:
            log.info("%d CTC GT mask(s) in %s belong to frames not in %s (e.g. %s): not used",
                     len(ctc_unmatched), mask_dir, folder, ctc_unmatched[0].name)
        missing = [n for n in by_name if n not in mask_of]
        if missing:
            log.warning("%d of %d image(s) have no mask in %s (e.g. %s): they are segmented but not scored",
                        len(missing), len(by_name), mask_dir, missing[:3])
    return [FolderImage(name, path, mask_of.get(name)) for name, path in by_name.items()]


def _read_any(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im)
        return np.asarray(tifffile.imread(path))
    except Exception as exc:  # readers raise many types for corrupt files
        raise InputError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc


def _channel_axis(shape: tuple[int, ...]) -> int:
    """Where the channels are in a 3D array: the last axis when it is short (H, W, C), else the
    first (C, H, W)."""
    return -1 if shape[-1] <= 4 and shape[-1] < shape[0] else 0


def read_channel(path: str | Path, channel: int | None = None) -> np.ndarray:
    """One 2D channel of an image file as float32.

    Multi-channel files need ``channel`` unless all their channels are equal (a grey image saved as
    RGB); an alpha channel is never chosen by default. NaN, infinite, constant or empty images and
    3D stacks are errors naming the file.
    """
    path = Path(path)
    arr = np.squeeze(_read_any(path))
    if arr.size == 0:
        raise InputError(path, "image is empty")
    if arr.ndim == 3:
        axis = _channel_axis(arr.shape)
        chans = np.moveaxis(arr, axis, 0)
        if channel is None:
            colour = chans[:3] if chans.shape[0] == 4 else chans
            if all(np.array_equal(colour[0], c) for c in colour[1:]):
                arr = colour[0]
            else:
                raise InputError(path, f"image has {chans.shape[0]} channels (shape {arr.shape}): choose one with "
                                 "data.channel=<index>")
        else:
            if not -chans.shape[0] <= channel < chans.shape[0]:
                raise InputError(path, f"data.channel={channel} but the image has {chans.shape[0]} channels "
                                 f"(shape {arr.shape})")
            arr = chans[channel]
    elif channel not in (None, 0):
        raise InputError(path, f"data.channel={channel} but the image has a single channel")
    if arr.ndim != 2:
        raise InputError(path, f"expected a 2D image (or 2D with channels), got shape {arr.shape}")
    return image_values(arr, path)


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """An instance label image (0 = background) of an image of ``shape``, as int64."""
    path = Path(path)
    arr = np.squeeze(_read_any(path))
    if arr.ndim != 2:
        raise InputError(path, f"a mask must be a 2D label image, got shape {arr.shape}")
    arr = label_values(arr, path)
    if arr.shape != tuple(shape):
        raise InputError(path, f"mask of shape {arr.shape} for an image of shape {tuple(shape)}")
    return arr
