"""``task=segment``: affinities + foreground -> instances (CTC ``_RES`` layout), scores, overlays.

Writes into ``paths.output_dir``: ``segment_result.json`` (pooled SEG and detection, per-frame
scores, the configuration), ``scores.csv`` (per frame, then the pooled row), ``detection.csv``
(pooled detection per IoU threshold), ``overlays/<seq>_tNNN.png`` and TensorBoard events in
``tensorboard/``; the masks go to ``<task.res_root>/<dataset>/<seq>_RES/maskNNN.tif``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from inpaintaff.segment.alpha import resolve_alpha
from inpaintaff.segment.evaluation import evaluate, load_inputs, write_outputs
from inpaintaff.segment.settings import segment_settings
from inpaintaff.tasks.compose import load_data


def run(cfg: DictConfig) -> dict:
    """Segment the frames of ``task.split`` with ``task.alpha`` and score them."""
    task = segment_settings(cfg.task)
    alpha, task = resolve_alpha(task)  # with the fragment size and threshold stored beside α
    dm = load_data(cfg.data)
    inputs = load_inputs(dm, task.split, task, int(cfg.seed))
    labels, scores, seconds = evaluate(inputs, task, alpha)
    return write_outputs(Path(cfg.paths.output_dir), task, dm, task.split, alpha, inputs, labels, scores, seconds)
