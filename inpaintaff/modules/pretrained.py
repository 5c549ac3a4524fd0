"""Starting a supervised net from the weights of another (the self-supervised student): every layer
whose name and shape match is copied, the rest (the output layer of another width) stays as
initialised."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

# Below this share of the target's parameters taken over, the two nets are not the same architecture.
MIN_MATCHED = 0.8


def checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (full or slim); a missing or unreadable file is an
    error naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(path, "checkpoint to start from (model.init_from) not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise InputError(path, "not a Lightning checkpoint: no state_dict in it")
    return state


def load_matching_weights(module: nn.Module, path: str | Path) -> dict[str, int]:
    """Copy into ``module`` every tensor of the checkpoint at ``path`` whose name and shape match;
    returns how many parameter tensors were copied and how many kept their own values. Fewer than
    ``MIN_MATCHED`` of the parameters matched: an error (another depth or width)."""
    source = checkpoint_state(path)
    own = module.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    n_params = sum(v.numel() for v in own.values())
    n_taken = sum(v.numel() for v in taken.values())
    if n_params == 0 or n_taken / n_params < MIN_MATCHED:
        raise InputError(path, f"only {n_taken:,} of the net's {n_params:,} weights match this checkpoint's in name "
                               "and shape: start from a checkpoint of the same architecture (model.depth, "
                               "base_features, max_features)")
    module.load_state_dict(taken, strict=False)
    kept = sorted(k for k in own if k not in taken)
    log.info("started from %s: %d of %d tensors copied (%.1f %% of the weights); own: %s", path, len(taken),
             len(own), 100 * n_taken / n_params, ", ".join(kept) or "none")
    return {"copied": len(taken), "kept": len(kept)}
