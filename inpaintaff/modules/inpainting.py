"""The self-supervised inpainting net as a LightningModule (partial-conv U-Net, Liu et al. loss).

Batches are dicts with ``"image"`` (B,C,H,W), percentile-normalised crops; masks (1 = known) are
drawn on the fly from a seeded numpy Generator (irregular and IGM-shaped, docs/method.md §2-3). The
engine calls ``forward(image, known)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from inpaintaff.data.masks import MaskSampler
from inpaintaff.losses.features import build_feature_extractor
from inpaintaff.losses.inpainting import InpaintingLoss
from inpaintaff.nets.pconv_unet import PConvUNet
from inpaintaff.utils.errors import InputError
from inpaintaff.viz.tensorboard import log_to_loggers

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine", "step")


def _plain(v):
    """Hydra containers -> plain Python (so hyperparameters pickle and print cleanly)."""
    return OmegaConf.to_container(v, resolve=True) if isinstance(v, (DictConfig, ListConfig)) else v


class InpaintingModule(pl.LightningModule):
    """Partial-conv U-Net inpainter.

    Args:
        in_channels: image channels. widths/kernel_sizes/batch_norm: the U-Net (see PConvUNet).
        loss_weights: overrides of {valid: 1, hole: 6, perceptual: 0.05, style: 120, tv: 0.1}.
        feature_extractor: vgg16 | efficientnet_lite0 | none | auto; feature_weights: VGG16 file.
            The extractor is built only for training/validation, never stored in checkpoints.
        masks: MaskSampler settings {ratios: {irregular, igm}, hole_range, d_range, p_whole}.
        lr, betas: Adam. lr_schedule: constant | cosine (to lr·lr_min_factor over the run) | step
            (×0.1 at each of ``lr_milestones`` steps); warmup_steps: linear warm-up.
        freeze_encoder_bn: keep encoder BatchNorm statistics fixed (Liu et al.'s fine-tuning stage).
        image_log_every_n_steps: TensorBoard images (input, mask, prediction, composite); 0 = off.
        mask_seed: seed of the mask Generator (offset by the global rank).
        init_from: an InpaintingModule checkpoint whose net weights start this run (fine-tuning
            with a fresh optimizer; to resume a run with its optimizer, use ``ckpt_path``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 512),
        kernel_sizes: Sequence[int] | None = None,
        batch_norm: bool = True,
        loss_weights: Mapping[str, float] | None = None,
        feature_extractor: str = "auto",
        feature_weights: str | None = None,
        masks: Mapping | None = None,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.9, 0.999),
        lr_schedule: str = "cosine",
        lr_min_factor: float = 0.05,
        lr_milestones: Sequence[int] = (),
        warmup_steps: int = 100,
        freeze_encoder_bn: bool = False,
        image_log_every_n_steps: int = 500,
        mask_seed: int = 0,
        init_from: str | None = None,
    ):
        super().__init__()
        widths, kernel_sizes, loss_weights = _plain(widths), _plain(kernel_sizes), _plain(loss_weights)
        masks, betas, lr_milestones = _plain(masks), _plain(betas), _plain(lr_milestones)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        self.save_hyperparameters(ignore=["init_from"])  # a path of this machine, not a setting of the net
        self.net = PConvUNet(in_channels, widths, kernel_sizes, batch_norm)
        self.mask_sampler = MaskSampler(**(masks or {}))
        self.loss_fn: InpaintingLoss | None = None  # built on first use (needs the feature extractor)
        self._mask_rng: np.random.Generator | None = None
        if init_from:
            self._load_net_weights(init_from)

    def _load_net_weights(self, path: str) -> None:
        """The net's weights from an InpaintingModule checkpoint (``init_from``)."""
        if not Path(path).is_file():
            raise InputError(path, "model.init_from: checkpoint not found")
        state = torch.load(path, map_location="cpu", weights_only=False).get("state_dict", {})
        net_state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
        try:
            self.net.load_state_dict(net_state)
        except RuntimeError as exc:
            raise InputError(path, f"model.init_from: weights do not fit this net's widths/kernels ({exc})") from exc
        log.info("net weights initialised from %s", path)

    # ---- the engine's API ------------------------------------------------------------------
    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Predict every pixel of ``image`` (B,C,H,W) from its known pixels (``known`` (B,1|C,H,W), 1 = known).

        Returns the raw prediction (B,C,H,W) (known pixels are predicted too, not copied). Any H, W.
        No side effects; the caller chooses eval mode and no_grad.
        """
        return self.net(image, known)

    # ---- training --------------------------------------------------------------------------
    def _loss(self) -> InpaintingLoss:
        if self.loss_fn is None:
            hp = self.hparams
            feats = build_feature_extractor(hp.feature_extractor, hp.feature_weights)
            self.loss_fn = InpaintingLoss(hp.loss_weights, feats)
        return self.loss_fn

    def _rng(self) -> np.random.Generator:
        if self._mask_rng is None:
            self._mask_rng = np.random.default_rng([int(self.hparams.mask_seed), int(self.global_rank)])
        return self._mask_rng

    def sample_masks(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Masks (B,1,H,W) for ``image``, 1 = known."""
        b, _, h, w = image.shape
        return torch.from_numpy(self.mask_sampler.batch(b, (h, w), rng)).to(image.device, image.dtype)

    def _step(self, batch: Mapping, rng: np.random.Generator):
        image = batch["image"]
        known = self.sample_masks(image, rng)
        pred = self.net(image, known)
        total, terms = self._loss()(pred, image, known)
        return image, known, pred, total, terms

    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        image, known, pred, total, terms = self._step(batch, self._rng())
        bs = image.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for k, v in terms.items():
            self.log(f"train/{k}", v, batch_size=bs)
        n = self.hparams.image_log_every_n_steps
        if n and self.global_step % n == 0:
            self.log_images("train", image, known, pred)
        return total

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        # The same masks at every validation: losses are comparable across epochs.
        rng = np.random.default_rng([int(self.hparams.mask_seed), 7919, batch_idx])
        image, known, pred, total, terms = self._step(batch, rng)
        hole = (1 - known).expand_as(image)
        hole_l1 = ((pred.float() - image.float()).abs() * hole).sum() / hole.sum().clamp_min(1)
        bs = image.shape[0]
        self.log("val/loss", total, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("val/hole_l1", hole_l1, prog_bar=True, batch_size=bs, sync_dist=True)
        if batch_idx == 0 and self.hparams.image_log_every_n_steps:
            self.log_images("val", image, known, pred)

    def log_images(self, tag: str, image: torch.Tensor, known: torch.Tensor, pred: torch.Tensor, n: int = 4) -> None:
        """To TensorBoard: rows of input (holes black), mask, prediction, composite."""
        image, pred = image[:n, :1].detach().float(), pred[:n, :1].detach().float()
        known = known[:n, :1].detach().float()
        comp = known * image + (1 - known) * pred
        grid = torch.cat([image * known, known, pred, comp], dim=-1).clamp(0, 1).cpu()
        log_to_loggers(self.loggers, self.global_step, batches={f"{tag}/input_mask_pred_composite": grid})

    # ---- optimisation ----------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.hparams.get("freeze_encoder_bn"):
            for m in self.net.enc.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam((p for p in self.parameters() if p.requires_grad), lr=hp.lr, betas=tuple(hp.betas))
        total = None
        if hp.lr_schedule == "cosine":
            total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 0
            if not total or total == math.inf or total <= 0:
                total = None
        warm, floor, milestones = int(hp.warmup_steps), float(hp.lr_min_factor), list(hp.lr_milestones)

        def factor(step: int) -> float:
            f = min(1.0, (step + 1) / warm) if warm else 1.0
            if hp.lr_schedule == "cosine" and total:
                t = min(1.0, max(0, step - warm) / max(1, total - warm))
                f *= floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
            elif hp.lr_schedule == "step":
                f *= 0.1 ** sum(step >= s for s in milestones)
            return f

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

