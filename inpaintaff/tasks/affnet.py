"""``task=affnet``: AFFNET (or DISTILL student) affinities for the frames of a split, in the
InpaintAff file layout; which of the two a checkpoint holds is read from the checkpoint.

Writes ``<out_dir>/<dataset>/<seq>_AFF/affNNN.tif`` through ``inpaintaff.io.affinities``, so
``task=segment`` reads AFFNET and InpaintAff affinities alike.
"""

from __future__ import annotations

import logging
import time

import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from inpaintaff.data.scaled import ScaledFrames
from inpaintaff.io.affinities import aff_path, read_affinity_metadata, write_affinities
from inpaintaff.modules.affnet import AffNetModule
from inpaintaff.modules.distill import DistillModule
from inpaintaff.offsets import OFFSETS, inside_pairs
from inpaintaff.segment.alpha import seed_from_checkpoint
from inpaintaff.tasks.checkpoints import (
    TiledSettings,
    check_tiled,
    checkpoint_diameter,
    checkpoint_fingerprint,
    checkpoint_kind,
    inference_device,
    kept_record,
    kept_record_of,
    load_module,
    outputs_to_write,
)
from inpaintaff.utils.config import typed
from inpaintaff.utils.tiling import predict_at_least

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    t = check_tiled(typed(cfg.task, TiledSettings))
    device = inference_device(cfg)
    cls = DistillModule if checkpoint_kind(cfg.ckpt) == "DistillModule" else AffNetModule
    source = "distill" if cls is DistillModule else "affnet"
    module = load_module(cls, cfg.ckpt, device)
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    frames = ScaledFrames(dm, checkpoint_diameter(cfg.ckpt), t.scale)
    fingerprint = checkpoint_fingerprint(cfg.ckpt)

    def record(ref) -> dict:
        return kept_record(fingerprint, frames, t.tile, t.halo, ref)

    todo, written = outputs_to_write(
        frames, t.split, lambda ref: aff_path(t.out_dir, dm.dataset, ref.seq, ref.frame, ref.stem), t.overwrite, record,
        lambda p: kept_record_of(read_affinity_metadata(p)), "affinities")
    if seed_from_checkpoint(cfg.ckpt, t.out_dir):
        log.info("the checkpoint's measured alpha copied to %s (task=segment task.alpha=auto reads it)", t.out_dir)
    seconds = []
    for ref, path in tqdm(todo, desc=f"{source.upper()} affinities", unit="frame"):
        t0 = time.perf_counter()
        image = frames.load_image(ref)  # at the checkpoint's nucleus size
        aff = predict_at_least(module.predict_proba, image, t.tile, t.halo, device)
        # Every pair inside the frame is predicted; pairs leaving it are not.
        valid = inside_pairs(image.shape)
        write_affinities(path, aff * valid, valid, OFFSETS, {"source": source, "ckpt": str(cfg.ckpt),
                                                         **frames.metadata(ref), **record(ref)})
        seconds.append(time.perf_counter() - t0)
        log.info("%s affinities %s -> %s (%.1f s)", source.upper(), ref.name, path, seconds[-1])
    return {"affinities": written, "out_dir": str(t.out_dir), "source": source,
            "seconds_per_frame": float(np.mean(seconds)) if seconds else None}
