"""Saving matplotlib figures as PNG, atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from inpaintaff.io.files import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 100, tight: bool = False, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` as PNG (temporary name, renamed when complete); close it unless told not to."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    if close:
        plt.close(fig)
    return path
