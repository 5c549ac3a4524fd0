"""``task=foreground``: FGNET foreground probabilities for the frames of a split.

Writes ``<out_dir>/<dataset>/<seq>_FG/fgNNN.tif`` (float32 probability, same size as the frame)
and a PNG of each, which ``task=segment`` reads with ``task.foreground.source=dir``.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig
from tqdm.auto import tqdm

from inpaintaff.data.scaled import ScaledFrames
from inpaintaff.io.foreground import foreground_path, read_foreground_metadata, write_foreground
from inpaintaff.modules.fgnet import FGNetModule
from inpaintaff.tasks.checkpoints import (
    ForegroundSettings,
    check_tiled,
    checkpoint_diameter,
    checkpoint_fingerprint,
    inference_device,
    kept_record,
    kept_record_of,
    load_module,
    outputs_to_write,
)
from inpaintaff.utils.config import typed
from inpaintaff.utils.tiling import predict_at_least
from inpaintaff.viz.foreground import save_foreground_png

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    t = check_tiled(typed(cfg.task, ForegroundSettings))
    device = inference_device(cfg)
    module = load_module(FGNetModule, cfg.ckpt, device)
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    frames = ScaledFrames(dm, checkpoint_diameter(cfg.ckpt), t.scale)
    fingerprint = checkpoint_fingerprint(cfg.ckpt)

    def record(ref) -> dict:
        return kept_record(fingerprint, frames, t.tile, t.halo, ref)

    todo, written = outputs_to_write(
        frames, t.split, lambda ref: foreground_path(t.out_dir, dm.dataset, ref.seq, ref.frame, ref.stem),
        t.overwrite, record,
        lambda p: kept_record_of(read_foreground_metadata(p)), "foreground probabilities")
    for ref, path in tqdm(todo, desc="FGNET foreground", unit="frame"):
        image = frames.load_image(ref)  # at the checkpoint's nucleus size
        prob = predict_at_least(module.predict_proba, image, t.tile, t.halo, device)[0]
        write_foreground(path, prob, {"source": "fgnet", "ckpt": str(cfg.ckpt), **frames.metadata(ref),
                                      **record(ref)})
        save_foreground_png(path.with_suffix(".png"), image, prob, t.threshold)
        log.info("foreground %s: %.1f %% above %.2f", ref.name, 100 * (prob > t.threshold).mean(), t.threshold)
    return {"foreground": written}
