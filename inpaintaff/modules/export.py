"""Slim a Lightning checkpoint for shipping: weights and hyperparameters only, no optimizer state.

``python -m inpaintaff.modules.export runs/.../last.ckpt checkpoints/model.ckpt``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from inpaintaff.io.files import atomic_path
from inpaintaff.utils.errors import InputError

_KEEP = ("state_dict", "hyper_parameters", "hparams_name", "pytorch-lightning_version", "epoch", "global_step",
         "inpaintaff")


def slim_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` keeping only what ``load_from_checkpoint`` needs."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(src, "checkpoint not found")
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt:
        raise InputError(src, "not a Lightning checkpoint (no state_dict)")
    with atomic_path(dst) as tmp:
        torch.save({k: ckpt[k] for k in _KEEP if k in ckpt}, tmp)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    out = slim_checkpoint(args.src, args.dst)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
