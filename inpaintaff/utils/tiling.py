"""Tiled prediction with a halo, as torch-em's ``predict_with_halo``: each tile is predicted with
``halo`` pixels of context on every side and only its inner block is kept, so seams vanish for
nets whose field of view fits the halo."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _starts(n: int, tile: int) -> list[int]:
    return list(range(0, max(n - tile, 0) + 1, tile)) + ([n - tile] if n > tile and (n - tile) % tile else [])


@torch.inference_mode()
def predict_with_halo(
    predict: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    tile: int = 256,
    halo: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Apply ``predict`` ((1, 1, h, w) → (1, C, h, w)) to a 2D image tile by tile; returns (C, H, W)."""
    h, w = image.shape
    th, tw = min(tile, h), min(tile, w)
    padded = np.pad(image, halo, mode="reflect" if min(h, w) > halo else "edge")
    out: np.ndarray | None = None
    for y in _starts(h, th):
        for x in _starts(w, tw):
            block = padded[y : y + th + 2 * halo, x : x + tw + 2 * halo]
            pred = predict(torch.from_numpy(np.ascontiguousarray(block))[None, None].to(device))
            pred = pred[0, :, halo : halo + th, halo : halo + tw].float().cpu().numpy()
            if out is None:
                out = np.zeros((pred.shape[0], h, w), dtype=np.float32)
            out[:, y : y + th, x : x + tw] = pred
    assert out is not None
    return out
