"""Pseudo-labels for FGNET's self-training (docs/method.md §6): a foreground trained on a few labels
predicts the unlabeled frames, and its confident pixels become labels for the next one. Pixels above
``high`` count as foreground, below ``low`` as background, and the uncertain ones between are
ignored by the loss (label -1, as the padding of small labeled crops)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_LABEL = -1  # what the supervised losses leave out (modules.supervised.IGNORE)


@dataclass(frozen=True)
class PseudoLabels:
    """``data.pseudo``: where the probabilities of the unlabeled (``raw``) frames are (``dir``, the
    ``out_dir`` of ``task=foreground``; null: off), the confidence thresholds, and the share of the
    training crops drawn from these frames (the rest from the labeled crops)."""

    dir: str | None = None
    high: float = 0.7
    low: float = 0.3
    share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"data.pseudo needs 0 <= low < high <= 1, got low={self.low}, high={self.high}")
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"data.pseudo.share must lie in (0, 1) (the share of crops from pseudo-labeled "
                             f"frames), got {self.share}")

    @property
    def active(self) -> bool:
        return self.dir is not None

    def labels(self, prob: np.ndarray) -> np.ndarray:
        """Labels of a probability map: 1 (foreground) at or above ``high``, 0 at or below ``low``,
        ``IGNORE_LABEL`` between."""
        out = np.full(prob.shape, IGNORE_LABEL, dtype=np.int32)
        out[prob >= self.high] = 1
        out[prob <= self.low] = 0
        return out


def crop_weights(groups: list[list[np.ndarray]], shares: list[float]) -> np.ndarray:
    """Per-image weights for drawing crops: within a group by area (every pixel equally likely), each
    group as a whole with its share."""
    out = []
    for images, share in zip(groups, shares):
        areas = np.array([im.size for im in images], dtype=np.float64)
        out.append(share * areas / areas.sum())
    return np.concatenate(out)
