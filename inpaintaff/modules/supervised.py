"""Shared Lightning plumbing for the supervised pix2pix nets (FGNET, AFFNET)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from inpaintaff.nets.pix2pix import Pix2PixUNet
from inpaintaff.viz.tensorboard import log_to_loggers

IGNORE = -1  # label value of padded pixels that must not count in a loss

# Which layers training updates; the rest keep the weights they started with (model.init_from),
# their batch-norm statistics and dropout fixed as at inference.
TRAIN_LAYERS = ("all", "decoder", "head")


class SupervisedPix2PixModule(pl.LightningModule):
    """A pix2pix U-Net trained on labeled crops (batches with ``image`` and ``labels``).

    Subclasses set ``out_channels`` and implement ``loss(logits, labels)``. ``init_from``: a
    checkpoint of the same architecture (the DISTILL student) whose matching weights start training
    (a resumed run's own checkpoint is restored over them). ``train_layers``: ``all``, ``decoder``
    (the encoder stays as started) or ``head`` (only the output layer learns: the net shares every
    feature with the checkpoint it started from).
    """

    out_channels: int = 1
    needs_labels = True  # training needs data.train_mode=labeled (checked by inpaintaff.train)

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 6,
        base_features: int = 64,
        max_features: int = 512,
        dropout: float = 0.5,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        image_log_every_n_steps: int = 200,
        init_from: str | None = None,
        refine: int = 0,
        train_layers: str = "all",
    ):
        super().__init__()
        if train_layers not in TRAIN_LAYERS:
            raise ValueError(f"model.train_layers must be one of {TRAIN_LAYERS}, got {train_layers!r}")
        self.save_hyperparameters(ignore=["init_from"])  # a path of this machine; its content is in the record
        self.net = Pix2PixUNet(in_channels, self.out_channels, depth, base_features, max_features, dropout, refine)
        if init_from:
            from inpaintaff.modules.pretrained import load_matching_weights

            load_matching_weights(self, init_from)
        self._started_from_checkpoint = bool(init_from)  # a loaded checkpoint's weights come after __init__
        for layer in self._fixed_layers():
            layer.requires_grad_(False)

    def _fixed_layers(self) -> list[nn.Module]:
        """The layers ``train_layers`` keeps as started."""
        which = self.hparams.get("train_layers", "all")
        if which == "decoder":
            return [self.net.down]
        if which == "head":
            return [self.net.down, self.net.up]
        return []

    def setup(self, stage: str) -> None:
        if stage == "fit" and self._fixed_layers() and not self._started_from_checkpoint:
            raise ValueError(f"model.train_layers={self.hparams.train_layers} keeps layers as they started: "
                             "it needs model.init_from")

    def train(self, mode: bool = True) -> SupervisedPix2PixModule:
        """Fixed layers stay in eval mode: their batch-norm statistics and dropout do not change."""
        super().train(mode)
        for layer in self._fixed_layers():
            layer.eval()
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_proba(self, image: torch.Tensor) -> torch.Tensor:
        """Probabilities (B, out_channels, H, W) for normalised images (B, C, H, W)."""
        return torch.sigmoid(self(image))

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.loss(logits, batch["labels"])
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True,
                 batch_size=batch["image"].shape[0])
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        every = self.hparams.image_log_every_n_steps
        if every and self.global_step % every == 0:
            self._log_images(batch)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def _log_images(self, batch: dict) -> None:
        with torch.no_grad():
            prob = self.predict_proba(batch["image"][:4])[:, :1]
        log_to_loggers(self.loggers, self.global_step,
                       batches={"train/image": batch["image"][:4].clamp(0, 1), "train/prediction": prob})

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.lr, betas=tuple(self.hparams.betas))
