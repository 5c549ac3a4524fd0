"""``task=affnet``: AFFNET affinities for the frames of a split, in the InpaintAff file layout.

Writes ``<out_dir>/<dataset>/<seq>_AFF/affNNN.tif`` through ``inpaintaff.igm.affinities``, so
``task=segment`` reads AFFNET and InpaintAff affinities alike.
"""

from __future__ import annotations

import logging

import hydra
import numpy as np
from omegaconf import DictConfig

from inpaintaff.igm.affinities import aff_path, write_affinities
from inpaintaff.modules.affnet import AffNetModule
from inpaintaff.offsets import OFFSETS, affinities_from_labels
from inpaintaff.tasks.checkpoints import frames_to_write, inference_device, load_module
from inpaintaff.utils.tiling import predict_with_halo

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    t = cfg.task
    device = inference_device(cfg)
    module = load_module(AffNetModule, cfg.ckpt, device)
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    todo, written = frames_to_write(
        dm, t.split, lambda seq, frame: aff_path(t.out_dir, dm.dataset, seq, frame), t.overwrite
    )
    for ref, path in todo:
        image = dm.load_image(ref)
        aff = predict_with_halo(module.predict_proba, image, t.tile, t.halo, device)
        # Every pair inside the frame is predicted; pairs leaving it are not.
        _, valid = affinities_from_labels(np.zeros(image.shape, np.int32), OFFSETS)
        write_affinities(path, aff * valid, valid, OFFSETS, {"source": "affnet", "ckpt": str(cfg.ckpt)})
        log.info("AFFNET affinities %s -> %s", ref.name, path)
    return {"affinities": written, "out_dir": str(t.out_dir)}
