"""Reading the project's checkpoints: which module a file holds, loading it with clear errors, and
the project's own record in it (the nucleus diameter). Below every layer that loads a net (``igm``,
``modules``, ``tasks``)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from inpaintaff.offsets import OFFSETS
from inpaintaff.utils.errors import InputError


def checkpoint_fingerprint(path: str | Path) -> str:
    """A short SHA-1 of the checkpoint file: outputs record it, so a changed checkpoint is noticed
    even under the same file name (the records' one file hash, computed once per file version)."""
    from inpaintaff.io.records import content_sha1

    return content_sha1(path)


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

    The project's one checkpoint loader: the prediction tasks and ``load_net_inpainter``
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
