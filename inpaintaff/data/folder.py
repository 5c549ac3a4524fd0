"""A plain folder of a user's images as a data module: ``data=folder data.images=DIR``.

Every split is the whole folder unless ``splits`` names the images of a split by file stem (for
example the few with masks as ``val`` to choose α on). Images may differ in size; masks, when
given, share the image's file stem. Training reuses :class:`CTCDataModule`'s crops: only where
the frames come from differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from inpaintaff.data.datamodule import SPLITS, CTCDataModule
from inpaintaff.data.sources import FrameRef
from inpaintaff.io.folder import FolderImage, list_folder, read_channel, read_mask
from inpaintaff.utils.errors import InputError


class FolderDataModule(CTCDataModule):
    """Frames from ``images`` (glob ``pattern``), with masks of the same stem from ``masks``.

    ``channel`` picks one channel of multi-channel files. ``splits`` maps a split to a list of
    image stems (default: every split is every image). Images are read when asked and not kept,
    so a folder of any length streams; training (``setup``) keeps its frames in memory like the
    CTC module.
    """

    def __init__(
        self,
        images: str | Path,
        pattern: str | Sequence[str] | None = None,
        masks: str | Path | None = None,
        channel: int | None = None,
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
        self.cache = bool(cache)
        named = {k: (None if v is None else [str(n) for n in v]) for k, v in (splits or {}).items()}
        unknown = set(named) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)} in data.splits; known: {SPLITS}")
        self.named_splits = named
        super().__init__(root=self.images_dir, dataset=dataset or self.images_dir.name or "images", splits={},
                         **kwargs)
        self._listing: list[FolderImage] | None = None

    def prepare_data(self) -> None:
        """List the folder now, so that a missing folder or an unmatched pattern fails at once."""
        self.listing()

    def listing(self) -> list[FolderImage]:
        """The folder's images with their masks (listed once)."""
        if self._listing is None:
            self._listing = list_folder(self.images_dir, self.pattern, self.masks_dir)
        return self._listing

    def frames(self, split: str) -> list[FrameRef]:
        """The images of ``split``: all of them, or the stems ``data.splits.<split>`` names (each must
        exist)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
        items = self.listing()
        names = self.named_splits.get(split)
        if names is not None:
            by_name = {it.name: it for it in items}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise InputError(self.images_dir,
                                 f"data.splits.{split} names image(s) not in the folder: {missing[:5]}")
            items = [by_name[n] for n in names]
        return [FrameRef("", i, it.path, it.mask_path, stem=it.name) for i, it in enumerate(items)]

    def load_raw(self, ref: FrameRef) -> np.ndarray:
        return read_channel(ref.raw_path, self.channel)

    def load_image(self, ref: FrameRef) -> np.ndarray:
        """The image, percentile-normalised (kept in memory only with ``cache``)."""
        from inpaintaff.data.normalize import percentile_normalize

        if ref.raw_path in self._cache:
            return self._cache[ref.raw_path]
        image = percentile_normalize(self.load_raw(ref), source=ref.raw_path, **self.normalize)
        if self.cache:
            self._cache[ref.raw_path] = image
        return image

    def load_labels(self, ref: FrameRef) -> np.ndarray:
        if ref.gt_path is None:
            raise InputError(ref.raw_path, "this image has no mask (data.masks)")
        shape = self.load_raw(ref).shape
        return read_mask(ref.gt_path, shape)

    def setup(self, stage: str | None = None) -> None:
        self.cache = True  # training draws crops from the same frames every epoch
        super().setup(stage)
