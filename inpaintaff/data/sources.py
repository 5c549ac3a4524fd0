"""The one interface every task reads frames through: a CTC dataset and a plain folder alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class FrameRef:
    """One frame of a sequence, with its GT segmentation if there is one."""

    seq: str
    frame: int
    raw_path: Path
    gt_path: Path | None
    # A plain folder's images are named by their file stem (outputs keep it); CTC frames by number.
    # A plane of a stack file is named ``<stem>/pNNNN`` and knows its index and the file's plane count.
    stem: str | None = None
    plane: int | None = None
    n_planes: int | None = None

    @property
    def name(self) -> str:
        return self.stem if self.stem is not None else f"{self.seq}/t{self.frame:03d}"


@runtime_checkable
class FrameSource(Protocol):
    """Frames by split, each readable as a normalised image and (where there is one) a GT labelling.

    Implemented by :class:`inpaintaff.data.datamodule.CTCDataModule` (``data=ctc_hela``,
    ``shared_hela``, ``synthetic``) and :class:`inpaintaff.data.folder.FolderDataModule`
    (``data=folder``).
    """

    dataset: str  # names the data in output paths
    diameter: float | None  # nucleus diameter in px given by the user (data.diameter); None: estimate

    def prepare_data(self) -> None:
        """Check (or make) the files; a clear error when they are missing."""

    def frames(self, split: str) -> list[FrameRef]:
        """The frames of a split."""

    def load_image(self, ref: FrameRef) -> np.ndarray:
        """The frame as float32, percentile-normalised."""

    def load_raw(self, ref: FrameRef) -> np.ndarray:
        """The frame as read (float32, not normalised): for measurements in the file's units."""

    def load_labels(self, ref: FrameRef) -> np.ndarray:
        """The GT instance labels of the frame (an error when it has none)."""
