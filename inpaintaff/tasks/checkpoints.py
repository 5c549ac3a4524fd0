"""Shared by the prediction tasks: devices, checkpoints with clear errors, frames still to write."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import MISSING

from inpaintaff.offsets import OFFSETS
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
    from inpaintaff.io.records import file_sha1, source_settings

    return {"ckpt_sha1": fingerprint, "scale": frames.record(), "tile": int(tile), "halo": int(halo),
            **source_settings(frames.source), "input_sha1": file_sha1(ref.raw_path)}


def kept_record_of(meta: dict) -> dict:
    """The same record as a file's metadata holds it (absent keys: ``<absent>``, so they differ)."""
    return {k: meta[k] for k in KEPT_KEYS if k in meta}


def checkpoint_fingerprint(path: str | Path) -> str:
    """A short SHA-1 of the checkpoint file: outputs record it, so a changed checkpoint is noticed
    even under the same file name (the records' one file hash, computed once per file version)."""
    from inpaintaff.io.records import checkpoint_sha1

    return checkpoint_sha1(path)


# The project's LightningModules and the task that uses each one's checkpoints.
TASK_OF = {"InpaintingModule": "task=inpaintaff", "FGNetModule": "task=foreground", "AffNetModule": "task=affnet",
           "DistillModule": "task=affnet"}


def checkpoint_kind(path: str | Path) -> str | None:
    """Which of the project's modules a checkpoint holds (by its weights), or None if none or unreadable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        sd = ckpt.get("state_dict") or {}
    except Exception:  # not a torch file, or not a dict
        return None
    if "net.out.weight" in sd and "net.enc.0.conv.weight" in sd:
        return "InpaintingModule"
    head = sd.get("net.head.weight")  # pix2pix: ConvTranspose2d (in, out, k, k), one output per channel
    if head is not None and head.ndim == 4:
        if int(head.shape[1]) == len(OFFSETS) and "loss" in (ckpt.get("hyper_parameters") or {}):
            return "DistillModule"  # AFFNET's architecture, trained on the engine's affinities
        return {1: "FGNetModule", len(OFFSETS): "AffNetModule"}.get(int(head.shape[1]))
    return None


def load_module(cls: type[pl.LightningModule], ckpt: str | Path | None, device: str | torch.device = "cpu"):
    """``cls.load_from_checkpoint(ckpt)`` in eval mode; missing or incompatible files are clear errors.

    The project's one checkpoint loader: the prediction tasks and ``NetInpainter.from_checkpoint``
    call it. No path, a missing file, and a checkpoint of another module (named, with the task
    it belongs to) are ``InputError``s.
    """
    name = cls.__name__
    if not ckpt:
        raise InputError(None, f"{TASK_OF.get(name, name)} needs a checkpoint: set ckpt=<path to an {name} .ckpt>")
    path = Path(ckpt)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        module = cls.load_from_checkpoint(path, map_location=device)
    except Exception as exc:  # wrong class, truncated file, other hyperparameters ...
        kind = checkpoint_kind(path)
        if kind is not None and kind != cls.__name__:
            needs = f" ({TASK_OF[cls.__name__]})" if cls.__name__ in TASK_OF else ""
            raise InputError(path, f"not a compatible {cls.__name__} checkpoint: it is an {kind} checkpoint "
                             f"({TASK_OF[kind]}), this needs an {cls.__name__} checkpoint{needs}") from exc
        cause = " ".join(str(exc).split())
        cause = cause if len(cause) <= 300 else cause[:300] + " ..."  # long lists of state-dict keys
        raise InputError(path, f"not a compatible {cls.__name__} checkpoint ({type(exc).__name__}: {cause})") from exc
    return module.eval().to(device)


# Key of the project's own record in a checkpoint: {"nucleus_diameter": px, "nucleus_diameter_from": how}.
META_KEY = "inpaintaff"


def checkpoint_meta(path: str | Path) -> dict:
    """The project's record stored in a checkpoint (empty for checkpoints written before it existed)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    meta = ckpt.get(META_KEY) if isinstance(ckpt, dict) else None
    return dict(meta or {})


def checkpoint_diameter(path: str | Path) -> float | None:
    """The nucleus diameter (px) the checkpoint's net was trained for, or None if it records none."""
    value = checkpoint_meta(path).get("nucleus_diameter")
    return None if value is None else float(value)
