"""Shared by the prediction tasks: devices, checkpoints with clear errors, frames still to write."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import MISSING

from inpaintaff.modules.loading import (  # noqa: F401  (the loaders, re-exported for the tasks)
    META_KEY,
    TASK_OF,
    checkpoint_diameter,
    checkpoint_fingerprint,
    checkpoint_kind,
    checkpoint_meta,
    load_module,
)
from inpaintaff.segment.scale import ScaleSpec
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)


def inference_device(cfg) -> str:
    """CUDA when the trainer config allows an accelerator and one is there, else CPU."""
    wants_gpu = str(cfg.trainer.get("accelerator", "auto")) in ("gpu", "cuda", "auto")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def outputs_to_write(frames: Any, split: str, path_of: Callable[[Any], Path], overwrite: bool,
                     record: Callable[[Any], dict], saved_record: Callable[[Path], dict], what: str):
    """(frame, output path) for the frames of ``split`` still to write, and every output path.

    A kept output is reused only when its record (``saved_record``) equals the frame's ``record``
    (:func:`kept_record`); one whose input file changed is written again; another checkpoint,
    resizing, tile, halo or normalisation is an error naming the file and what differs, so that
    results of other settings are not silently mixed in the same ``out_dir`` (unless ``overwrite``).
    """
    from inpaintaff.io.records import differences

    todo, paths = [], []
    for ref in frames.frames(split):
        path = path_of(ref)
        paths.append(str(path))
        if path.exists() and not overwrite:
            now, saved = record(ref), saved_record(path)
            diff = differences(saved, now)
            if not diff:
                log.info("%s exists, skipped", path)
                continue
            if saved.get("ckpt_sha1") != now["ckpt_sha1"]:
                kept = saved.get("ckpt_sha1") or "unknown"
                raise InputError(path, f"{what} of another checkpoint ({kept} in the file, {now['ckpt_sha1']} now): "
                                       "choose another task.out_dir, or set task.overwrite=true")
            scale = [d for d in diff if d.startswith("scale.")]
            if scale:
                raise InputError(path, f"{what} resized otherwise ({'; '.join(scale)}): choose another task.out_dir, "
                                       "or set task.overwrite=true")
            other = [d for d in diff if not d.startswith("input_sha1")]
            if other:
                raise InputError(path, f"{what} made otherwise ({'; '.join(other)}): choose another task.out_dir, or "
                                       "set task.overwrite=true")
            log.info("%s changed since %s was written: predicting it again", ref.raw_path, path)
        todo.append((ref, path))
    return todo, paths


@dataclass
class TiledSettings:
    """``task=affnet`` and ``task=foreground``: a net's tiled prediction of every frame of ``split``."""

    name: str = MISSING
    split: str = MISSING
    tile: int = MISSING
    halo: int = MISSING
    out_dir: str = MISSING
    overwrite: bool = MISSING
    scale: ScaleSpec = field(default_factory=ScaleSpec)


def check_tiled(t: TiledSettings) -> TiledSettings:
    """``t`` once its tiling is possible: ``task.tile`` >= 1 and ``task.halo`` >= 0."""
    if t.tile < 1:
        raise ValueError(f"task.tile must be >= 1 (pixels of a tile's side), got {t.tile}")
    if t.halo < 0:
        raise ValueError(f"task.halo must be >= 0, got {t.halo}")
    return t


@dataclass
class ForegroundSettings(TiledSettings):
    threshold: float = MISSING  # for the pictures and the log


# What a kept output's record holds (files written before a key existed lack it: they are redone or an error).
KEPT_KEYS = ("ckpt_sha1", "scale", "tile", "halo", "normalize", "channel", "input_sha1")


def kept_record(fingerprint: str, frames: Any, tile: int, halo: int, ref: Any) -> dict:
    """What must match for a kept output of frame ``ref`` to be reused: the checkpoint's content, what
    decides the frame's resizing (``frames``: a :class:`~inpaintaff.data.scaled.ScaledFrames`), the
    tiling, how the source reads the file (normalisation, channel) and the input file's SHA-1."""
    from inpaintaff.io.records import content_sha1, source_settings

    return {"ckpt_sha1": fingerprint, "scale": frames.record(), "tile": int(tile), "halo": int(halo),
            **source_settings(frames.source), "input_sha1": content_sha1(ref.raw_path)}


def kept_record_of(meta: dict) -> dict:
    """The same record as a file's metadata holds it (absent keys: ``<absent>``, so they differ)."""
    return {k: meta[k] for k in KEPT_KEYS if k in meta}
