"""Typed settings of the segmentation tasks (``task=segment``, ``task=segment_select``; ``task=table1``
composes them per row). Their defaults live in ``conf/task/segment.yaml`` and
``conf/task/segment_select.yaml``; ``segment_settings`` checks a task config against these, and the
settings check their own values whenever one is made (``__post_init__``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from inpaintaff.utils.config import typed
from inpaintaff.utils.plugins import is_target, target_name


@dataclass
class AffinitySpec:
    """Where a frame's affinities come from: ``labels`` (GT plus ``noise``), ``dir`` (TIFFs), or
    ``{_target_: your.Class, ...}`` (an ``AffinitySource``, inpaintaff/segment/sources.py)."""

    source: Any = MISSING
    noise: float = MISSING
    dir: str | None = MISSING
    pattern: str | None = MISSING  # null: where the tasks write them (inpaintaff.io)
    kind: str = MISSING  # auto | inpaintaff | affnet | distill: names the result's row


@dataclass
class ForegroundSpec:
    """Where a frame's foreground comes from: ``truefg``, ``dir``/``file`` (probabilities), ``intensity``,
    ``all``, or ``{_target_: your.Class, ...}`` (a ``ForegroundSource``, inpaintaff/segment/sources.py)."""

    source: Any = MISSING
    dir: str | None = MISSING
    pattern: str | None = MISSING  # null: where the tasks write them (inpaintaff.io)
    threshold: float = MISSING


@dataclass
class MwsSpec:
    """The mutex watershed's solver settings and the fragment merge after it."""

    backend: str = MISSING
    strides: list[int] | None = MISSING
    randomized_strides: bool = MISSING
    min_size: int = MISSING
    seed: int = MISSING


@dataclass
class MetricsSpec:
    iou_thresholds: list[float] = MISSING
    sparse_gt: bool = MISSING


@dataclass
class SegmentSettings:
    """``task=segment``: one α on one split."""

    name: str = MISSING
    split: str = MISSING
    method: str = MISSING  # mws | cc
    alpha: Any = MISSING  # a number, or "auto"
    alpha_file: str | None = MISSING
    affinities: AffinitySpec = field(default_factory=AffinitySpec)
    foreground: ForegroundSpec = field(default_factory=ForegroundSpec)
    mws: MwsSpec = field(default_factory=MwsSpec)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
    crop: list[int] | None = MISSING
    res_root: str = MISSING
    overlays: bool = MISSING
    label: str | None = MISSING

    def __post_init__(self) -> None:  # also after dataclasses.replace
        check_min_sizes([self.mws.min_size], "task.mws.min_size")
        check_alpha(self.alpha)


@dataclass
class SegmentSelectSettings(SegmentSettings):
    """``task=segment_select``: α (and the fragment size) chosen on ``select_split``, then ``split``."""

    select_split: str = MISSING
    alphas: list[float] = MISSING
    min_sizes: list[int] | None = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        check_min_sizes(self.min_sizes, "task.min_sizes")


def check_min_sizes(sizes: list[int] | None, key: str) -> None:
    """Fragment sizes (pixels) are counts: a negative one is an error naming ``key``."""
    bad = [int(m) for m in sizes or [] if int(m) < 0]
    if bad:
        raise ValueError(f"{key} must be >= 0 (fragment sizes in pixels), got {list(sizes)}")


def check_alpha(alpha: Any, key: str = "task.alpha") -> None:
    """``alpha`` is a number or ``auto``; else an error naming ``key``."""
    if str(alpha) == "auto":
        return
    try:
        float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number or 'auto', got {alpha!r}") from None


def segment_settings(task: Mapping[str, Any]) -> SegmentSettings:
    """``cfg.task`` of a segmentation task (converted once, at the task's entry), typed (``segment_select``
    keys included when present) and checked by the settings themselves: fragment sizes >= 0, α a
    number or ``auto``."""
    return typed(task, SegmentSelectSettings if "select_split" in task else SegmentSettings)


_AFF_NAMES = {"inpaintaff": "INPAINTAFF", "affnet": "AFFNET", "distill": "DISTILL"}
_FG_NAMES = {"truefg": "TRUEFG", "dir": "FGNET", "file": "FGNET", "intensity": "INTENSITY", "all": "ALL"}


def source_name(source: Any, names: Mapping[str, str], fallback: str) -> str:
    """A source's name in a row label: the built-in's (``names``), a ``_target_`` class's own name in
    capitals, else ``fallback``."""
    if is_target(source):
        return target_name(source).upper()
    return names.get(source, fallback) if isinstance(source, str) else fallback


def method_label(task: SegmentSettings) -> str:
    """The row name of a run in the paper's Table 1, e.g. ``INPAINTAFF + TRUEFG``.

    ``task.label`` wins when set; otherwise it is derived from the method, affinities and
    foreground (``task.affinities.kind`` names affinities read from a folder).
    """
    if task.label:
        return task.label
    fg = source_name(task.foreground.source, _FG_NAMES, "FG")
    if task.method == "cc":
        return f"CC on {fg}"
    aff = task.affinities
    if aff.source == "labels":
        name = "GT-AFF" + (f" (noise {aff.noise:g})" if aff.noise else "")
    elif is_target(aff.source) and aff.kind == "auto":
        name = target_name(aff.source).upper()
    else:
        kind = "inpaintaff" if aff.kind == "auto" else aff.kind
        name = _AFF_NAMES.get(kind, kind.upper())
    return f"{name} + {fg}"
