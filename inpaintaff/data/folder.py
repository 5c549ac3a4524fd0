"""A plain folder of a user's images as a data module: ``data=folder data.images=DIR``.

Every split is the whole folder unless ``splits`` names the images of a split by file stem (for
example the few with masks as ``val`` to choose α on). Images may differ in size; masks, when
given, share the image's file stem. Each plane of a stack file (a time-lapse or z-stack, ``planes``)
is a frame of its own, named ``<stem>/pNNNN``. Training reuses :class:`CTCDataModule`'s crops: only where
the frames come from differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from inpaintaff.data.datamodule import SPLITS, CTCDataModule
from inpaintaff.data.sources import FrameRef
from inpaintaff.io.folder import FolderImage, list_folder, read_channel, read_mask, read_plane, read_with_axes
from inpaintaff.utils.errors import InputError


class FolderDataModule(CTCDataModule):
    """Frames from ``images`` (glob ``pattern``), with masks of the same stem from ``masks``.

    ``channel`` picks one channel of multi-channel files. ``planes`` says which files are stacks of
    planes (None: those whose axes say T or Z; True: also a 3D file without axes; False: none); a
    stack's planes are frames named ``<stem>/pNNNN``, and one stack is kept open while its planes are
    read (memory-mapped when uncompressed, else in memory). ``splits`` maps a split to a list of image
    stems, or of a stack's plane names (default: every split is every image). Images are read when
    asked and not kept, so a folder of any length streams; training (``setup``) keeps its frames in
    memory like the CTC module.
    """

    def __init__(
        self,
        images: str | Path,
        pattern: str | Sequence[str] | None = None,
        masks: str | Path | None = None,
        channel: int | None = None,
        planes: bool | None = None,
        splits: Mapping[str, Sequence[str] | None] | None = None,
        cache: bool = False,
        dataset: str | None = None,
        **kwargs,
    ):
        if images is None or str(images) in ("", "???"):
            raise InputError(None, "data=folder needs data.images=<folder of your images>")
        self.images_dir = Path(images).expanduser()
        self.pattern = pattern if pattern is None or isinstance(pattern, str) else list(pattern)
        self.masks_dir = None if masks is None else Path(masks).expanduser()
        self.channel = None if channel is None else int(channel)
        if planes not in (None, True, False):
            raise ValueError(f"data.planes must be null, true or false, got {planes!r}")
        self.planes = planes
        self._stack: tuple[Path, tuple[np.ndarray, str]] | None = None  # the stack file read last
        self.cache = bool(cache)
        named = {k: (None if v is None else [str(n) for n in v]) for k, v in (splits or {}).items()}
        unknown = set(named) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)} in data.splits; known: {SPLITS}")
        self.named_splits = named
        super().__init__(root=self.images_dir, dataset=dataset or self.images_dir.name or "images", splits={},
                         **kwargs)
        self._listing: list[FolderImage] | None = None

    def __getstate__(self) -> dict:
        """Pickled (for spawned processes) without the stack read last: each process reads its own."""
        state = self.__dict__.copy()
        state["_stack"] = None
        return state

    def prepare_data(self) -> None:
        """List the folder now, so that a missing folder or an unmatched pattern fails at once."""
        self.listing()

    def listing(self) -> list[FolderImage]:
        """The folder's images with their masks (listed once)."""
        if self._listing is None:
            self._listing = list_folder(self.images_dir, self.pattern, self.masks_dir, self.planes)
        return self._listing

    def frames(self, split: str) -> list[FrameRef]:
        """The images of ``split`` (a stack: each of its planes): all of them, or those whose stems (or
        plane names, ``<stem>/pNNNN``) ``data.splits.<split>`` names (each must exist)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
        by_name: dict[str, list[FrameRef]] = {}  # an image's or a stack's frames, and each plane's own
        for item in self.listing():
            by_name[item.name] = self._refs(item)
            by_name.update({ref.stem: [ref] for ref in by_name[item.name] if ref.plane is not None})
        names = self.named_splits.get(split)
        if names is None:
            refs = [ref for item in self.listing() for ref in by_name[item.name]]
        else:
            missing = [n for n in names if n not in by_name]
            if missing:
                raise InputError(self.images_dir,
                                 f"data.splits.{split} names image(s) not in the folder: {missing[:5]}")
            refs = [ref for n in names for ref in by_name[n]]
        return [replace(ref, frame=i) for i, ref in enumerate(refs)]

    @staticmethod
    def _refs(item: FolderImage) -> list[FrameRef]:
        """An image's frame, or one per plane of a stack (``<stem>/pNNNN``)."""
        if item.planes is None:
            return [FrameRef("", 0, item.path, item.mask_path, stem=item.name)]
        return [FrameRef("", 0, item.path, item.mask_path, stem=f"{item.name}/p{p:04d}", plane=p,
                         n_planes=item.planes) for p in range(item.planes)]

    def load_raw(self, ref: FrameRef) -> np.ndarray:
        if ref.plane is None:
            return read_channel(ref.raw_path, self.channel)
        if self._stack is None or self._stack[0] != ref.raw_path:
            self._stack = None  # free the last stack before reading the next
            self._stack = (ref.raw_path, read_with_axes(ref.raw_path, lazy=True))
        return read_plane(ref.raw_path, ref.plane, self.channel, self.planes, stack=self._stack[1])

    def load_image(self, ref: FrameRef) -> np.ndarray:
        """The image, percentile-normalised (kept in memory only with ``cache``)."""
        from inpaintaff.data.normalize import percentile_normalize

        key = (ref.raw_path, ref.plane)  # the planes of a stack share its file
        if key in self._cache:
            return self._cache[key]
        image = percentile_normalize(self.load_raw(ref), source=ref.raw_path, **self.normalize)
        if self.cache:
            self._cache[key] = image
        return image

    def load_labels(self, ref: FrameRef) -> np.ndarray:
        if ref.gt_path is None:
            raise InputError(ref.raw_path, "this image has no mask (data.masks)")
        shape = self.load_raw(ref).shape
        if ref.plane is None:
            return read_mask(ref.gt_path, shape)
        return read_mask(ref.gt_path, shape, plane=ref.plane)

    def setup(self, stage: str | None = None) -> None:
        self.cache = True  # training draws crops from the same frames every epoch
        super().setup(stage)
