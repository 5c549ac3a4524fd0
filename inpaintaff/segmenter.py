"""``Segmenter``: nucleus images to instance labels in one pass (foreground, affinities, mutex
watershed) with shipped or own checkpoints. The Python API (``inpaintaff.api``) adds running it on a
whole folder; the folder task uses this one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.segment.alpha import checkpoint_alpha_file, checkpoint_fgnet_file, read_alpha
from inpaintaff.segment.one_pass import FOREGROUNDS, OnePassResult, OnePassSegmenter, OnePassSettings
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.resolvers import CHECKPOINT_DIR

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5  # FGNET's, where its α file stores none
# The folder command's and ``pretrained()``'s model (conf/task/segment_folder.yaml names its checkpoints):
# the better of the shipped ones on HeLa and DSB images alike in detection accuracy
# (benchmarks/folder_default.py; README "A foreground from a few labels").
DEFAULT_MODEL = "hela_tuned"
# Objects under this fraction of a nucleus's area are dropped (conf/task/segment_folder.yaml's
# min_area_fraction): the largest fraction whose SEG on the DSB val images stays within 0.005 of the
# best for every shipped model (benchmarks/folder_default.py --sets dsb_val).
DEFAULT_MIN_AREA_FRACTION = 0.075
PRETRAINED = {
    "hela": {"affinities": CHECKPOINT_DIR / "hela_distill_cpu.ckpt",
             "foreground": CHECKPOINT_DIR / "hela_fgnet_cpu.ckpt"},
    # The HeLa student fine-tuned on FGNET's 31 labeled nuclei (experiment=hela_distill_tuned_cpu).
    "hela_tuned": {"affinities": CHECKPOINT_DIR / "hela_distill_tuned_cpu.ckpt",
                   "foreground": CHECKPOINT_DIR / "hela_fgnet_cpu.ckpt"},
    # Trained without labels on 100 DSB 2018 fluorescence images (experiment=dsb_selfsup); its FGNET started
    # from it and learned from 38 labeled nuclei.
    "dsb": {"affinities": CHECKPOINT_DIR / "dsb_distill_cpu.ckpt",
            "foreground": CHECKPOINT_DIR / "dsb_fgnet_cpu.ckpt"},
}


def _load_affinity_net(ckpt: str | Path, device: str):
    from inpaintaff.modules.affnet import AffNetModule
    from inpaintaff.modules.distill import DistillModule
    from inpaintaff.modules.loading import checkpoint_kind, load_module

    cls = DistillModule if checkpoint_kind(ckpt) == "DistillModule" else AffNetModule
    return load_module(cls, ckpt, device)


def stored_alpha(ckpt: str | Path, foreground: str) -> tuple[float, int, float | None]:
    """α, fragment size and FGNET threshold (None: not stored) measured for this checkpoint and
    foreground (``<ckpt>.alpha.json``); a predicted foreground other than FGNET's uses FGNET's entry."""
    key = "truefg" if foreground == "truefg" else "fgnet"
    value, entry = read_alpha(checkpoint_alpha_file(ckpt), key)
    threshold = entry.get("threshold")
    return value, int(entry["min_size"]), None if threshold is None else float(threshold)


class Segmenter:
    """Foreground + one-pass affinities + mutex watershed, at the model's nucleus size.

    Build it with :meth:`from_checkpoints` or :meth:`pretrained`; call it on 2D arrays.
    """

    def __init__(self, one_pass: OnePassSegmenter, checkpoints: dict[str, str | None],
                 normalize: tuple[float, float] = (1.0, 99.8)):
        self.one_pass, self.checkpoints, self.normalize = one_pass, checkpoints, tuple(normalize)

    @property
    def settings(self) -> OnePassSettings:
        return self.one_pass.settings

    @property
    def model_diameter(self) -> float | None:
        """The nucleus diameter (px) the affinity net was trained for."""
        return self.one_pass.model_diameter

    @classmethod
    def from_checkpoints(
        cls,
        affinities: str | Path,
        foreground: str | Path | None = None,
        *,
        foreground_source: str = "fgnet",
        alpha: float | str = "auto",
        min_size: int | str = "auto",
        threshold: float | str = "auto",
        tile: int = 256,
        halo: int = 32,
        fill_holes: bool = True,
        scale: bool = True,
        tolerance: float = 0.1,
        min_objects: int = 5,
        min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION,
        backend: str = "bioimage-cpp",
        seed: int = 0,
        normalize: Sequence[float] = (1.0, 99.8),
        device: str | None = None,
    ) -> Segmenter:
        """A segmenter from an affinity checkpoint (DISTILL student or AFFNET) and, for
        ``foreground_source="fgnet"``, an FGNET checkpoint. ``alpha``/``min_size``/``threshold``
        ``"auto"``: the values stored beside the affinity checkpoint for this foreground (FGNET's
        threshold 0.5 where none is stored)."""
        from inpaintaff.modules.fgnet import FGNetModule
        from inpaintaff.modules.loading import checkpoint_diameter, load_module

        if foreground_source not in FOREGROUNDS:
            raise ValueError(f"foreground_source must be one of {FOREGROUNDS}, got {foreground_source!r}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        aff_net = _load_affinity_net(affinities, device)
        fg_net = None
        if foreground_source == "fgnet":
            if not foreground and checkpoint_fgnet_file(affinities).is_file():
                foreground = checkpoint_fgnet_file(affinities)  # the student's own, shipped beside it
            if not foreground:
                raise InputError(None, "foreground_source=fgnet needs an FGNET checkpoint (foreground=...)")
            fg_net = load_module(FGNetModule, foreground, device)
        stored: tuple[float, int, float | None] | None = None
        if "auto" in (str(alpha), str(min_size)) or (
                str(threshold) == "auto" and checkpoint_alpha_file(affinities).is_file()):
            stored = stored_alpha(affinities, foreground_source)
        alpha = stored[0] if str(alpha) == "auto" else alpha
        min_size = stored[1] if str(min_size) == "auto" else min_size
        if str(threshold) == "auto":
            threshold = stored[2] if stored is not None and stored[2] is not None else DEFAULT_THRESHOLD
        settings = OnePassSettings(
            alpha=float(alpha), min_size=int(min_size), foreground=foreground_source, threshold=float(threshold),
            tile=int(tile), halo=int(halo), fill_holes=bool(fill_holes), scale=bool(scale),
            tolerance=float(tolerance), min_objects=int(min_objects), backend=backend, seed=int(seed),
            min_area_fraction=float(min_area_fraction))
        model_diameter = checkpoint_diameter(affinities)
        if scale and model_diameter is None:
            log.warning("%s records no nucleus diameter: images are not resized", affinities)
        one_pass = OnePassSegmenter(aff_net.predict_proba, settings, model_diameter,
                                    None if fg_net is None else fg_net.predict_proba, device)
        one_pass.nets = [m for m in (aff_net, fg_net) if m is not None]  # keeps the modules (and their device)
        ckpts = {"affinities": str(affinities), "foreground": None if fg_net is None else str(foreground)}
        return cls(one_pass, ckpts, (float(normalize[0]), float(normalize[1])))

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, **kwargs: Any) -> Segmenter:
        """The shipped checkpoints (``"hela_tuned"``, the default: HeLa's DISTILL student fine-tuned on
        FGNET's labeled nuclei, and FGNET; ``"hela"``: the student as trained without labels, and FGNET;
        ``"dsb"``: those of the 2018 Data Science Bowl's fluorescence nuclei, the student trained without
        labels)."""
        if name not in PRETRAINED:
            raise ValueError(f"unknown pretrained model {name!r}; known: {sorted(PRETRAINED)}")
        return cls.from_checkpoints(**PRETRAINED[name], **kwargs)

    def segment(self, image: np.ndarray, diameter: float | None = None, labels: np.ndarray | None = None,
                normalized: bool = False, keep_affinities: bool = False) -> OnePassResult:
        """Labels of a 2D image with what happened (the resizing, timings); ``labels`` (GT) only for
        ``foreground_source="truefg"``; ``normalized``: the image is percentile-normalised already."""
        image = np.asarray(image)
        if image.ndim != 2:
            raise InputError(None, f"expected a 2D image, got shape {image.shape} (pick one channel; a time-lapse "
                             "or z-stack goes to segment_stack)")
        if not normalized:
            image = percentile_normalize(image, *self.normalize)
        with torch.inference_mode():
            return self.one_pass(image, diameter=diameter, gt=labels, keep_affinities=keep_affinities)

    def __call__(self, image: np.ndarray, diameter: float | None = None) -> np.ndarray:
        """Instance labels (int64, 0 = background) of a 2D image."""
        return self.segment(image, diameter).labels

    def segment_stack(self, stack: np.ndarray, diameter: float | None = None) -> np.ndarray:
        """Labels of every plane of a stack (P, H, W), a time-lapse or z-stack, each segmented on its own
        as ``__call__`` segments an image: (P, H, W) int64; labels are not linked between planes."""
        stack = np.asarray(stack)
        if stack.ndim != 3:
            raise InputError(None, f"expected a stack of 2D planes (P, H, W), got shape {stack.shape}")
        return np.stack([self(plane, diameter) for plane in stack])

    def config_overrides(self) -> list[str]:
        """The ``task=segment_folder`` overrides that rebuild this segmenter from its checkpoints."""
        s = self.settings
        return [
            f"task.affinities_ckpt={self.checkpoints['affinities']}",
            f"task.foreground.source={s.foreground}",
            f"task.foreground.ckpt={self.checkpoints['foreground'] or 'null'}",
            f"task.foreground.threshold={s.threshold}", f"task.alpha={s.alpha}", f"task.min_size={s.min_size}",
            f"task.tile={s.tile}", f"task.halo={s.halo}", f"task.fill_holes={str(s.fill_holes).lower()}",
            f"task.scale.enabled={str(s.scale).lower()}", f"task.scale.tolerance={s.tolerance}",
            f"task.scale.min_objects={s.min_objects}", f"task.mws_backend={s.backend}", f"seed={s.seed}",
            f"task.min_area_fraction={s.min_area_fraction}",
            f"data.normalize.low={self.normalize[0]}", f"data.normalize.high={self.normalize[1]}",
        ]

    def describe(self) -> dict:
        """Settings and checkpoints, as recorded beside results."""
        return {"settings": asdict(self.settings), "checkpoints": self.checkpoints, "normalize": list(self.normalize),
                "model_diameter": self.model_diameter}
