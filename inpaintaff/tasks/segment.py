"""``task=segment``: affinities + foreground -> instances (CTC ``_RES`` layout), scores, overlays.

Writes into ``paths.output_dir``: ``segment_result.json`` (pooled SEG and detection, per-frame
scores, the configuration), ``scores.csv`` (per frame, then the pooled row), ``detection.csv``
(pooled detection per IoU threshold), ``overlays/<seq>_tNNN.png`` and TensorBoard events in
``tensorboard/``; the masks go to ``<task.res_root>/<dataset>/<seq>_RES/maskNNN.tif``.
"""

from __future__ import annotations

from omegaconf import DictConfig, open_dict

from inpaintaff.segment.alpha import resolve_alpha
from inpaintaff.segment.evaluation import evaluate, load_inputs, task_settings, write_outputs


def run(cfg: DictConfig) -> dict:
    """Segment the frames of ``task.split`` with ``task.alpha`` and score them."""
    split = str(cfg.task.split)
    alpha, min_size, threshold = resolve_alpha(task_settings(cfg))
    with open_dict(cfg):
        if min_size is not None:
            cfg.task.mws.min_size = min_size
        if threshold is not None:
            cfg.task.foreground.threshold = threshold
    dm, inputs = load_inputs(cfg, split)
    labels, scores, seconds = evaluate(inputs, task_settings(cfg), alpha)
    return write_outputs(cfg, dm, split, alpha, inputs, labels, scores, seconds)
