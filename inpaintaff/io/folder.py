"""A plain folder of images (a user's own data): finding the files, reading one channel of each.

Images are matched by glob patterns (TIFF and PNG by default); masks, when given, live in another
folder under the same file stem (``img_a.tif`` ↔ ``img_a.tif`` or ``img_a.png``), or under the Cell
Tracking Challenge's GT names (``man_seg013.tif`` ↔ ``t013.tif``: ``--masks <seq>_GT/SEG`` as it comes).
Every output of an image is named by its stem.

A TIFF may be a stack of 2D planes: a time-lapse or a z-stack, as ImageJ and OME-TIFF files say in
their axes (``T``, ``Z``). Each plane is then an image of its own (``planes``: ``None`` decides by
those axes, ``True`` also takes the first axis of a file without them, ``False`` never); a stack's
mask file holds one label plane per plane.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import tifffile

from inpaintaff.io.ctc import image_values, label_values
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)
Result = TypeVar("Result")

DEFAULT_PATTERNS = ("*.tif", "*.tiff", "*.png")
_IMAGE_SUFFIXES = {".tif", ".tiff", ".png"}
_CTC_MASK = re.compile(r"man_seg(\d+)")
PLANE_AXES = "TZ"  # tifffile's letters for time points and z slices


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
    """One image of a folder, named by its file stem, with its mask if there is one; ``planes`` is
    the number of 2D planes of a stack file (None: a 2D image)."""

    name: str
    path: Path
    mask_path: Path | None = None
    planes: int | None = None


def image_layout(path: str | Path) -> tuple[tuple[int, ...], str]:
    """The shape of the image in ``path`` (length-1 axes dropped) and its axes in tifffile's letters
    (T time, Z depth, C channel, S colour sample, Y, X, Q or I unknown), from the file's header."""
    return _reading(path, _layout)


def _layout(path: Path) -> tuple[tuple[int, ...], str]:
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            bands = len(im.getbands())
            return ((im.height, im.width, bands), "YXS") if bands > 1 else ((im.height, im.width), "YX")
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return tuple(int(n) for n in series.shape), str(series.axes)


def _reading(path: str | Path, read: Callable[[Path], Result]) -> Result:
    """``read(path)``, with a missing or unreadable file an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return read(path)
    except Exception as exc:  # readers raise many types for corrupt files
        raise InputError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc


def plane_axes(shape: Sequence[int], axes: str, planes: bool | None) -> list[int]:
    """The axes of an array of ``shape`` and ``axes`` that hold its planes ([]: a 2D image, maybe with
    channels). ``planes``: None takes the ``T`` and ``Z`` axes; True also the first axis of a stack
    without them (any axis before ``Y``); False none."""
    if planes is False or len(shape) < 3:
        return []
    marked = [i for i, a in enumerate(axes) if a in PLANE_AXES]
    if marked or planes is None:
        return marked
    before_y = axes.index("Y") if "Y" in axes else len(shape) - 2
    return [0] if before_y > 0 else []


def count_planes(path: str | Path, planes: bool | None) -> int | None:
    """How many 2D planes the file ``path`` holds when it is a stack, else None. An unreadable file
    counts as one image here: reading it later names the problem."""
    if planes is False or Path(path).suffix.lower() == ".png":
        return None
    try:
        shape, axes = image_layout(path)
    except InputError:
        return None
    where = plane_axes(shape, axes, planes)
    return int(np.prod([shape[i] for i in where])) if where else None


def _patterns(pattern: str | Sequence[str] | None) -> list[str]:
    if pattern is None:
        return list(DEFAULT_PATTERNS)
    return [pattern] if isinstance(pattern, str) else [str(p) for p in pattern]


def list_folder(images: str | Path, pattern: str | Sequence[str] | None = None,
                masks: str | Path | None = None, planes: bool | None = False) -> list[FolderImage]:
    """The images of a folder matching ``pattern`` (a glob or a list of globs), sorted by name,
    each with its mask from ``masks`` (same stem) when that folder is given, and its number of
    planes when it is a stack (``planes``: see ``plane_axes``).

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
    return [FolderImage(name, path, mask_of.get(name), count_planes(path, planes)) for name, path in by_name.items()]


def _read_any(path: Path) -> np.ndarray:
    return read_with_axes(path)[0]


def read_with_axes(path: str | Path, lazy: bool = False) -> tuple[np.ndarray, str]:
    """The whole image in ``path`` (length-1 axes dropped) and its axes, as ``image_layout`` names them.
    ``lazy``: an uncompressed TIFF is memory-mapped, so that reading one plane of a large stack reads
    only that plane."""
    return _reading(path, lambda p: _array(p, lazy))


def _array(path: Path, lazy: bool) -> tuple[np.ndarray, str]:
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            arr = np.squeeze(np.asarray(im))
        return arr, "YXS"[: arr.ndim]
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = str(series.axes)
        arr = None if lazy else np.asarray(series.asarray())
    if arr is None:
        try:
            arr = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or not contiguous: read it whole
            arr = np.asarray(tifffile.imread(path))
    if arr.ndim != len(axes):  # not as the header says: keep the array, forget the letters
        arr = np.squeeze(arr)
        axes = "Q" * (arr.ndim - 2) + "YX"
    return arr, axes


def take_plane(arr: np.ndarray, axes: str, plane: int, planes: bool | None, path: str | Path) -> np.ndarray:
    """Plane ``plane`` of a stack ``arr`` (its plane axes flattened in order), with its other axes."""
    where = plane_axes(arr.shape, axes, planes)
    if not where:
        raise InputError(path, f"not a stack of planes (shape {arr.shape}, axes {axes})")
    stack = np.moveaxis(arr, where, list(range(len(where))))
    stack = stack.reshape(-1, *stack.shape[len(where):])
    if not 0 <= plane < len(stack):
        raise InputError(path, f"plane {plane} asked for, but the stack has {len(stack)} planes")
    return stack[plane]


def read_plane(path: str | Path, plane: int, channel: int | None = None, planes: bool | None = None,
               stack: tuple[np.ndarray, str] | None = None) -> np.ndarray:
    """One 2D plane (and channel) of a stack file as float32, checked as ``read_channel`` checks an
    image; errors name the file and the plane. ``stack``: the file as ``read_with_axes`` gave it."""
    arr, axes = read_with_axes(path) if stack is None else stack
    one = np.squeeze(take_plane(arr, axes, plane, planes, path))  # its errors name the plane already
    try:
        return _one_channel(one, channel, Path(path), in_stack=True)
    except InputError as exc:
        raise InputError(path, f"plane {plane}: {exc.problem}") from exc


def _channel_axis(shape: tuple[int, ...]) -> int:
    """Where the channels are in a 3D array: the last axis when it is short (H, W, C), else the
    first (C, H, W)."""
    return -1 if shape[-1] <= 4 and shape[-1] < shape[0] else 0


def read_channel(path: str | Path, channel: int | None = None) -> np.ndarray:
    """One 2D channel of an image file as float32.

    Multi-channel files need ``channel`` unless all their channels are equal (a grey image saved as
    RGB); an alpha channel is never chosen by default. NaN, infinite, constant or empty images and
    stacks of planes (``read_plane`` reads those) are errors naming the file.
    """
    path = Path(path)
    return _one_channel(np.squeeze(_read_any(path)), channel, path)


def _one_channel(arr: np.ndarray, channel: int | None, path: Path, in_stack: bool = False) -> np.ndarray:
    """One 2D channel of ``arr``; ``in_stack``: ``arr`` is a plane of a stack (no hint to read planes)."""
    planes_hint = "" if in_stack else " (or, for a time-lapse or z-stack, segment each plane with data.planes=true)"
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
                                 f"data.channel=<index>{planes_hint}")
        else:
            if not -chans.shape[0] <= channel < chans.shape[0]:
                raise InputError(path, f"data.channel={channel} but the image has {chans.shape[0]} channels "
                                 f"(shape {arr.shape})")
            arr = chans[channel]
    elif channel not in (None, 0):
        raise InputError(path, f"data.channel={channel} but the image has a single channel")
    if arr.ndim != 2:
        raise InputError(path, f"expected a 2D image (or 2D with channels), got shape {arr.shape}; a stack of "
                         "planes is read with data.planes=true")
    return image_values(arr, path)


def read_mask(path: str | Path, shape: tuple[int, int], plane: int | None = None) -> np.ndarray:
    """An instance label image (0 = background) of an image of ``shape``, as int64; ``plane``: that
    plane of a stack of label planes (the mask of a stack file)."""
    path = Path(path)
    arr = np.squeeze(_read_any(path))
    if plane is not None:
        if arr.ndim != 3:
            raise InputError(path, f"the mask of a stack must be a stack of label planes, got shape {arr.shape}")
        if not 0 <= plane < len(arr):
            raise InputError(path, f"plane {plane} asked for, but the mask has {len(arr)} planes")
        arr = arr[plane]
    if arr.ndim != 2:
        raise InputError(path, f"a mask must be a 2D label image, got shape {arr.shape}")
    arr = label_values(arr, path)
    if arr.shape != tuple(shape):
        raise InputError(path, f"mask of shape {arr.shape} for an image of shape {tuple(shape)}")
    return arr
