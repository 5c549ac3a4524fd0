"""The Python API: ``Segmenter`` turns nucleus images into instance labels with shipped or own
checkpoints, as ``cellpose``'s ``model.eval`` or stardist's ``predict_instances`` do.

    from inpaintaff import Segmenter
    seg = Segmenter.pretrained()                  # hela_tuned: DISTILL student + FGNET, α stored beside them
    labels = seg(image)                            # a 2D numpy array in, labels out
    labels = seg(image, diameter=60)               # nuclei of about 60 px across
    seg.segment_folder("images/", out="results/")  # the same as `inpaintaff segment images/`
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inpaintaff import segmenter
from inpaintaff.segmenter import DEFAULT_THRESHOLD, PRETRAINED, stored_alpha

__all__ = ["DEFAULT_THRESHOLD", "PRETRAINED", "Segmenter", "stored_alpha"]


class Segmenter(segmenter.Segmenter):
    """Foreground + one-pass affinities + mutex watershed, at the model's nucleus size (see
    :class:`inpaintaff.segmenter.Segmenter`), and :meth:`segment_folder` for a whole folder."""

    def segment_folder(self, images: str | Path, out: str | Path, *, pattern: str | Sequence[str] | None = None,
                       masks: str | Path | None = None, diameter: float | None = None, channel: int | None = None,
                       overrides: Sequence[str] = ()) -> dict:
        """Segment every image of a folder into ``out`` (masks/<name>.tif, overlays, CSVs), exactly as
        ``python predict.py task=segment_folder`` does; returns the task's summary."""
        from inpaintaff.tasks.segment_folder import run_segment_folder

        args = [f"data.images={Path(images).resolve()}", f"paths.output_dir={Path(out).resolve()}"]
        if pattern is not None:
            args.append(f"data.pattern={pattern!r}" if isinstance(pattern, str) else f"data.pattern={list(pattern)}")
        if masks is not None:
            args.append(f"data.masks={Path(masks).resolve()}")
        if diameter is not None:
            args.append(f"data.diameter={float(diameter)}")
        if channel is not None:
            args.append(f"data.channel={int(channel)}")
        return run_segment_folder([*self.config_overrides(), *args, *overrides])
