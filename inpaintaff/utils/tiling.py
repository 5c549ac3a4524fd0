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


# The offsets reach 27 px: an image shrunk to a model's scale is padded to at least this size.
MIN_SIDE = 64


def _pad_to(image: np.ndarray, side: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """``image`` padded (reflected) to at least ``side`` per axis, and where the image sits in it."""
    ph, pw = max(0, side - image.shape[0]), max(0, side - image.shape[1])
    if not ph and not pw:
        return image, (slice(None), slice(None))
    mode = "reflect" if min(image.shape) > 1 and ph < image.shape[0] and pw < image.shape[1] else "edge"
    padded = np.pad(image, ((0, ph), (0, pw)), mode=mode)
    return padded, (slice(0, image.shape[0]), slice(0, image.shape[1]))


def predict_at_least(predict: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, tile: int, halo: int,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """``predict_with_halo`` on ``image`` padded to at least ``MIN_SIDE`` px (an image shrunk to the
    model's scale may be tiny); the result has the image's shape."""
    padded, inner = _pad_to(np.asarray(image, dtype=np.float32), MIN_SIDE)
    return predict_with_halo(predict, padded, tile, halo, device)[(slice(None), *inner)]


def with_flips(predict: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict`` averaged over the 8 flips and quarter turns of its input, each undone on the
    output (test-time augmentation; only for outputs without a direction, such as a foreground)."""

    def averaged(x: torch.Tensor) -> torch.Tensor:
        total = None
        for flip in (False, True):
            xf = torch.flip(x, (-1,)) if flip else x
            for k in range(4):
                y = torch.rot90(predict(torch.rot90(xf, k, (-2, -1))), -k, (-2, -1))
                y = torch.flip(y, (-1,)) if flip else y
                total = y if total is None else total + y
        return total / 8

    return averaged
