"""Sliding patches of the frames to predict, with their positions, as a LightningDataModule.

Patch ids number a frame's sliding positions row by row (before any foreground filter), so they
stay the same between runs with the same patch size, stride and crop: resuming skips ids already
done. Each patch's seed comes from (seed, sequence, frame, y, x), never from rank or order, so any
number of devices gives the same splits.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintaff.data.datamodule import CTCDataModule
from inpaintaff.data.sources import FrameRef
from inpaintaff.igm.split import mix_seed
from inpaintaff.io.foreground import FG_PATTERN
from inpaintaff.segment.pipeline import check_crop
from inpaintaff.segment.sources import (
    FOREGROUND_SOURCES,
    ForegroundSource,
    FrameData,
    build_foreground,
    frame_foreground,
)
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.plugins import is_target

# Every built-in foreground but ``all`` (which would skip nothing); null: split every patch.
SKIP_SOURCES = (None, *(s for s in FOREGROUND_SOURCES if s != "all"))
_ALIASES = {"gt": "truefg", "file": "dir"}


def foreground_skip_spec(spec: str | Mapping | None) -> dict:
    """``task.foreground`` as a complete mapping: which pixels count as foreground for skipping.

    ``source``: null (every patch is split), ``truefg`` (GT; ``gt`` is accepted too), ``dir`` or
    ``file`` (probability TIFFs such as ``task=foreground`` writes, thresholded at ``threshold``),
    ``intensity`` (the normalised image above ``threshold``), a ``{_target_: your.Class, ...}``
    foreground source (``inpaintaff.segment.sources.ForegroundSource``), or a list of these, whose
    union counts (``[truefg, dir]``: affinities good for both a GT and an FGNET foreground). A patch
    with fewer than ``min_pixels`` foreground pixels is skipped. Skipping loses nothing for pairs
    inside the same foreground: every such pair lies in a patch that holds foreground.
    """
    spec = {"source": spec} if spec is None or isinstance(spec, str) else dict(spec)
    out = {"source": spec.get("source"), "dir": spec.get("dir"), "pattern": spec.get("pattern") or FG_PATTERN,
           "threshold": float(spec.get("threshold", 0.5)), "min_pixels": int(spec.get("min_pixels", 1))}
    sources = out["source"] if isinstance(out["source"], (list, tuple)) else [out["source"]]
    sources = [dict(s) if is_target(s) else _ALIASES.get(s, s) if isinstance(s, str) else s for s in sources]
    for s in sources:
        if (s not in SKIP_SOURCES and not is_target(s)) or (s is None and len(sources) > 1):
            raise ValueError(f"task.foreground.source must be one of {SKIP_SOURCES} (or gt), a mapping with "
                             f"_target_, or a list of these without null, got {out['source']!r}")
    if not sources:
        raise ValueError("task.foreground.source is an empty list: use null to split every patch")
    out["source"] = sources[0] if len(sources) == 1 else sources
    if "dir" in sources and not out["dir"]:
        raise ValueError("task.foreground.source=dir needs task.foreground.dir (e.g. task=foreground's out_dir)")
    if out["min_pixels"] < 1:
        raise ValueError(f"task.foreground.min_pixels must be >= 1, got {out['min_pixels']}")
    return out


def patch_counts(mask: np.ndarray, positions: Sequence[tuple[int, int]], size: int) -> np.ndarray:
    """Number of True pixels of ``mask`` in each ``size``² window at ``positions`` (summed-area table)."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(mask, 0), 1)
    ys = np.array([y for y, _ in positions], dtype=np.int64)
    xs = np.array([x for _, x in positions], dtype=np.int64)
    return table[ys + size, xs + size] - table[ys, xs + size] - table[ys + size, xs] + table[ys, xs]


def sliding_positions(n: int, size: int, stride: int) -> list[int]:
    """Start positions covering [0, n): 0, stride, 2 stride, ..., and n - size as the last."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    pos = list(range(0, n - size + 1, stride))
    if pos[-1] != n - size:
        pos.append(n - size)
    return pos


def patch_grid(shape: Sequence[int], size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the sliding ``size``² patches of an image of ``shape``, row by row
    (the order that numbers patch ids)."""
    ys, xs = sliding_positions(int(shape[0]), size, stride), sliding_positions(int(shape[1]), size, stride)
    return [(y, x) for y in ys for x in xs]


def centred_window(shape: tuple[int, ...], window: int) -> list[int]:
    """[y0, x0, h, w] of the centred part of at most ``window`` x ``window`` of a frame of ``shape``."""
    h, w = min(shape[0], window), min(shape[1], window)
    return [(shape[0] - h) // 2, (shape[1] - w) // 2, h, w]


def _seq_number(seq: str) -> int:
    return int(seq) if seq.isdigit() else zlib.crc32(seq.encode())


@dataclass
class FrameInfo:
    """One frame to predict: where it is, the crop, and its patches."""

    index: int
    seq: str
    frame: int
    shape: tuple[int, int]  # after the crop
    origin: tuple[int, int]  # top-left of the crop in the full frame
    positions: list[tuple[int, int]]  # all sliding positions in the crop (id = index in this list)
    full_shape: tuple[int, int] = (0, 0)  # the whole frame (affinities are written at this size)
    todo: list[int] = field(default_factory=list)  # ids to process (foreground, not yet done)
    active: list[int] = field(default_factory=list)  # ids with foreground (all ids without a mask)
    skipped: bool = False  # already written: nothing to do
    stem: str | None = None  # an image of a plain folder: its file stem names it and its files

    @property
    def key(self) -> str:
        return self.stem if self.stem is not None else f"{self.seq}/t{self.frame:03d}"

    @property
    def file_stem(self) -> str:
        """The frame's name in file names (partial sums, pictures)."""
        return self.stem if self.stem is not None else f"{self.seq}_t{self.frame:03d}"


class PatchDataset(Dataset):
    """Items: image (1, p, p) float32, frame (index), patch_id, y, x, seed; with ``foregrounds`` (one
    bool array per frame) also foreground (1, p, p) bool, which the engine's region rules read.

    With ``repeats`` hierarchies per patch, id ``pid * repeats + r`` is the r-th hierarchy of the
    patch at position ``pid``; r > 0 draws its own seed (another first split)."""

    def __init__(self, images: Sequence[np.ndarray], frames: Sequence[FrameInfo], size: int, seed: int,
                 repeats: int = 1, foregrounds: Sequence[np.ndarray] | None = None):
        self.images, self.size, self.seed, self.repeats = list(images), int(size), int(seed), int(repeats)
        self.foregrounds = None if foregrounds is None else list(foregrounds)  # items then carry "foreground"
        self.items = [(f.index, pid) for f in frames for pid in f.todo]
        self.frames = {f.index: f for f in frames}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        fi, pid = self.items[idx]
        info = self.frames[fi]
        pos, rep = divmod(pid, self.repeats)
        y, x = info.positions[pos]
        patch = self.images[fi][y : y + self.size, x : x + self.size]
        seed = mix_seed(self.seed, _seq_number(info.seq), info.frame, y, x)
        if rep:
            seed = mix_seed(seed, rep)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32))[None],
            "frame": torch.tensor(fi), "patch_id": torch.tensor(pid),
            "y": torch.tensor(y), "x": torch.tensor(x), "seed": torch.tensor(seed),
        }
        if self.foregrounds is not None:
            fg = self.foregrounds[fi][y : y + self.size, x : x + self.size]
            item["foreground"] = torch.from_numpy(np.ascontiguousarray(fg, dtype=bool))[None]
        return item


class PatchDataModule(pl.LightningDataModule):
    """Patches of ``data.frames("predict")`` (normalised by ``data.load_image``).

    Args:
        data: the CTC data module. patch_size, stride: the sliding window.
        crop: optional [y0, x0, h, w] taken from every frame before patching.
        window: optional side (px): a frame larger than window x window is cut to its centred
            window of that size (each frame its own; with ``crop`` unset), to bound a frame's cost.
        foreground: which patches to skip (see ``foreground_skip_spec``): None, a source name
            ("truefg"/"gt", "dir"/"file", "intensity") or a mapping {source, dir, pattern, threshold, min_pixels}.
        repeats: hierarchies per patch, each from its own seed, all averaged into the affinities.
        patch_foreground: serve each patch's foreground (of ``foreground``) with it, for the engine's
            region rules (``engine.region_min_fg``, ``engine.one_object_px``).

    After ``setup``, ``resume(written, done)`` takes out what an earlier run finished.
    """

    def __init__(
        self,
        data: CTCDataModule,
        patch_size: int = 64,
        stride: int = 16,
        batch_size: int = 16,
        crop: Sequence[int] | None = None,
        foreground: str | Mapping | None = None,
        seed: int = 0,
        num_workers: int = 0,
        repeats: int = 1,
        window: int | None = None,
        patch_foreground: bool = False,
    ):
        super().__init__()
        if window is not None and int(window) < int(patch_size):
            raise ValueError(f"task.window must be at least the patch size {patch_size}, got {window}")
        if window is not None and crop is not None:
            raise ValueError("task.window and task.crop exclude each other: set one of them")
        self.window = None if window is None else int(window)
        if int(repeats) < 1:
            raise ValueError(f"task.hierarchies_per_patch must be >= 1, got {repeats}")
        self.repeats = int(repeats)
        if crop is not None:
            check_crop(crop)
        self.data, self.size, self.stride = data, int(patch_size), int(stride)
        self.batch_size, self.num_workers, self.seed = int(batch_size), int(num_workers), int(seed)
        self.crop = None if crop is None else [int(c) for c in crop]
        self.foreground = foreground_skip_spec(foreground)
        self._skip_sources: list[tuple[Any, ForegroundSource]] | None = None  # built on first use
        if patch_foreground and self.foreground["source"] is None:
            raise ValueError("the engine's region rules (task.engine.region_min_fg, task.engine.one_object_px) read "
                             "the foreground: set task.foreground.source (e.g. dir with FGNET's probabilities, or "
                             "intensity)")
        self.patch_foreground = bool(patch_foreground)
        self.frames: list[FrameInfo] = []
        self.images: list[np.ndarray] = []
        self.foregrounds: list[np.ndarray] = []  # per frame (cropped), kept only with patch_foreground
        self._planned = False

    def frame_crop(self, shape: tuple[int, ...]) -> list[int] | None:
        """The [y0, x0, h, w] taken from a frame of ``shape``: ``crop``, or the centred ``window``."""
        if self.crop is not None or self.window is None:
            return self.crop
        return centred_window(shape, self.window)

    def _crop(self, ref: FrameRef, arr: np.ndarray) -> np.ndarray:
        crop = self.frame_crop(arr.shape)
        if crop is None:
            return arr
        y0, x0, h, w = crop
        if y0 + h > arr.shape[0] or x0 + w > arr.shape[1]:
            raise InputError(ref.raw_path, f"crop {crop} (y0, x0, h, w) exceeds the frame of shape {arr.shape}")
        return arr[y0 : y0 + h, x0 : x0 + w]

    def setup(self, stage: str | None = None) -> None:
        """Load the frames and plan their patches (once)."""
        if self._planned:
            return
        refs = self.data.frames("predict")
        if not refs:
            raise InputError(self.data.root / self.data.dataset, "the predict split holds no frames")
        for ref in refs:
            full = self.data.load_image(ref)
            image = self._crop(ref, full)
            if min(image.shape) < self.size:
                raise InputError(ref.raw_path, f"image of shape {image.shape} (after crop {self.crop}) is smaller "
                                 f"than the patch size {self.size}")
            positions = patch_grid(image.shape, self.size, self.stride)
            crop = self.frame_crop(full.shape)
            origin = (0, 0) if crop is None else (crop[0], crop[1])
            info = FrameInfo(len(self.frames), ref.seq, ref.frame, image.shape, origin, positions, full.shape,
                             stem=ref.stem)
            ids = list(range(len(positions)))
            fg = self._foreground(ref, full)
            if fg is not None:
                if self.patch_foreground:
                    self.foregrounds.append(self._crop(ref, fg))
                counts = patch_counts(self._crop(ref, fg), positions, self.size)
                ids = [i for i in ids if counts[i] >= self.foreground["min_pixels"]]
                if not ids:
                    raise InputError(ref.raw_path, f"frame {info.key}: {self._why_empty(counts)}: no patch to "
                                     "compute, the frame's affinities would be empty; change that setting, or leave "
                                     "the frame out of data.splits.predict")
            info.active = [pid * self.repeats + r for pid in ids for r in range(self.repeats)]
            info.todo = list(info.active)
            self.frames.append(info)
            self.images.append(image)
        self._planned = True

    def _why_empty(self, counts: np.ndarray) -> str:
        """Which ``task.foreground`` setting leaves no patch of a frame (``counts``: foreground pixels per patch)."""
        spec = self.foreground
        where = "" if self.crop is None else f" (within task.crop {self.crop})"
        if counts.max() == 0:
            sources = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
            thresholded = [s for s in sources if s in ("dir", "intensity")]
            at = f" above task.foreground.threshold={spec['threshold']:g}" if thresholded else ""
            return f"no foreground pixel{where}{at} (task.foreground.source={spec['source']})"
        return (f"no {self.size}x{self.size} patch{where} holds task.foreground.min_pixels={spec['min_pixels']} "
                f"foreground pixels (the most is {int(counts.max())})")

    def _foreground(self, ref: FrameRef, image: np.ndarray) -> np.ndarray | None:
        """The whole frame's foreground for skipping patches, or None (no skipping)."""
        spec = self.foreground
        if spec["source"] is None:
            return None
        if self._skip_sources is None:
            names = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
            self._skip_sources = [(name, build_foreground(name, dir=spec["dir"], pattern=spec["pattern"],
                                                          threshold=spec["threshold"])) for name in names]
        frame_shape = self.data.input_shape(ref) if hasattr(self.data, "input_shape") else None
        # GT is read (once) for TRUEFG, and offered to a plugged-in source where the frame has it.
        names = [name for name, _ in self._skip_sources]
        wants_gt = "truefg" in names or (ref.gt_path is not None and any(is_target(n) for n in names))
        labels = self.data.load_labels(ref) if wants_gt else None
        data = FrameData(self.data.dataset, ref.seq, ref.frame, image.shape, labels, image, ref.stem, frame_shape,
                         self.seed)
        fg = np.zeros(image.shape, dtype=bool)
        for _, source in self._skip_sources:
            fg |= frame_foreground(source, data)
        return fg

    def resume(self, written: Sequence[str] = (), done: Mapping[str, Sequence[int]] | None = None) -> None:
        """Leave out frames already written (keys such as "01/t013") and patch ids already done."""
        self.setup()
        written = set(written)
        done = {k: set(map(int, v)) for k, v in (done or {}).items()}
        for info in self.frames:
            info.skipped = info.key in written
            finished = done.get(info.key, set())
            info.todo = [] if info.skipped else [i for i in info.active if i not in finished]

    @property
    def n_todo(self) -> int:
        return sum(len(f.todo) for f in self.frames)

    def predict_dataloader(self) -> DataLoader:
        self.setup()
        ds = PatchDataset(self.images, self.frames, self.size, self.seed, self.repeats,
                          self.foregrounds if self.patch_foreground else None)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)
