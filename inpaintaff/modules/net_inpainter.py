"""A trained inpainting net loaded from its checkpoint, behind the engine's inpainter interface
(here, above ``igm/``, so that the engine never imports the LightningModules)."""

from __future__ import annotations

from pathlib import Path

import torch

from inpaintaff.igm.inpainters import COMPILE_MODES, NetInpainter
from inpaintaff.modules.inpainting import InpaintingModule
from inpaintaff.modules.loading import load_module


def load_net_inpainter(path: str | Path | None, device: str | torch.device = "cpu",
                       compile: bool | str = False) -> NetInpainter:
    """Load an ``InpaintingModule`` checkpoint with ``modules.loading.load_module``: no path, a missing
    file or a checkpoint of another kind is an ``InputError`` (naming the kind found).

    ``compile``: ``torch.compile`` the net, with dynamic shapes (``True`` or ``"dynamic"``: the engine's
    batches vary in size) or for one fixed shape (``"fixed"``: the engine pads every call to
    ``engine.chunk`` images, ``engine.pad_chunks``): a one-off cost of tens of seconds per process,
    then faster passes.
    """
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be false, true, 'dynamic' or 'fixed', got {compile!r}")
    module = load_module(InpaintingModule, path, "cpu")
    inp = NetInpainter(module).to(device)
    if torch.device(device).type == "cuda":
        inp = inp.to(memory_format=torch.channels_last)
    if compile:
        module.net = torch.compile(module.net, dynamic=compile != "fixed")
    return inp
