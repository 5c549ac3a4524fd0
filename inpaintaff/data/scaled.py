"""A frame source seen at a model's nucleus size: every frame resized so that its nuclei have the
diameter the model was trained for (docs/method.md, "Nucleus size")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from inpaintaff.data.sources import FrameSource
from inpaintaff.segment.scale import ScaleDecision, ScaleSpec, estimate_scale, labels_to_shape, rescale_image

if TYPE_CHECKING:
    from inpaintaff.data.sources import FrameRef

# How training frames are resized to ``data.resize_to`` (the prediction tasks' ``task.scale`` defaults).
TRAINING_SCALE = ScaleSpec(enabled=True, tolerance=0.1, min_objects=5, warn_factor=2.0)


class ScaledFrames:
    """Wraps a :class:`FrameSource`: ``load_image`` and ``load_labels`` return the frame at the model's
    scale (anti-aliased image, nearest labels); ``decision(ref)`` says how it was resized. Everything
    else (splits, names, paths) is the wrapped source's."""

    def __init__(self, source: FrameSource, model_diameter: float | None, spec: ScaleSpec):
        self.source, self.model_diameter, self.spec = source, model_diameter, spec
        self._decisions: dict[Any, ScaleDecision] = {}

    def __getattr__(self, name: str) -> Any:  # dataset, root, diameter, frames, prepare_data, ...
        if name.startswith("__") or name in ("source", "spec", "model_diameter", "_decisions"):
            raise AttributeError(name)  # not set yet (unpickling in a spawned process)
        return getattr(self.source, name)

    def record(self) -> dict:
        """What decides every frame's factor (with the frame itself): part of a result's record."""
        return {"enabled": self.spec.enabled, "model_diameter": self.model_diameter,
                "diameter": self.source.diameter, "tolerance": self.spec.tolerance,
                "min_objects": self.spec.min_objects}

    def decision(self, ref: FrameRef) -> ScaleDecision:
        if ref not in self._decisions:
            self._decisions[ref] = estimate_scale(self.source.load_image(ref), self.model_diameter,
                                                  self.source.diameter, self.spec, ref.name)
        return self._decisions[ref]

    def metadata(self, ref: FrameRef) -> dict:
        """What a file written at the model's scale records of its resizing."""
        d = self.decision(ref)
        return {"scale_factor": d.factor, "input_shape": list(self.input_shape(ref)),
                "diameter": d.diameter, "diameter_source": d.source, "scale": self.record()}

    def input_shape(self, ref: FrameRef) -> tuple[int, int]:
        """The frame's shape before resizing."""
        return tuple(self.source.load_image(ref).shape)  # type: ignore[return-value]

    def load_image(self, ref: FrameRef) -> np.ndarray:
        return rescale_image(self.source.load_image(ref), self.decision(ref).factor)

    def load_labels(self, ref: FrameRef) -> np.ndarray:
        labels = self.source.load_labels(ref)
        d = self.decision(ref)
        return labels if d.factor == 1.0 else labels_to_shape(labels, self.load_image(ref).shape)
