"""The training job behind train.py."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.trainer.states import TrainerFn

from inpaintaff.io.files import ensure_writable_dir
from inpaintaff.modules.nucleus_size import NucleusSizeRecorder, training_diameter
from inpaintaff.modules.training_record import check_resumed_record, training_record
from inpaintaff.train_checks import check_crop_size, check_resume_checkpoint, check_training_config
from inpaintaff.utils.instantiate import build_trainer

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"


class InterruptCheckpoint(pl.Callback):
    """``<dirpath>/interrupted.ckpt`` when training stops on Ctrl-C, SIGTERM or an error, so that
    ``ckpt_path=`` resumes from that step rather than from the last periodic checkpoint.

    Part of every training run whatever ``callbacks=`` says. Like Lightning's ``OnExceptionCheckpoint``,
    but not a ``Checkpoint``: it neither replaces Lightning's default ``ModelCheckpoint`` (with
    ``callbacks=none``) nor becomes ``trainer.checkpoint_callback``. A later run that ends normally
    deletes the file, unless it resumed from it.
    """

    def __init__(self, dirpath: str | Path, filename: str = INTERRUPTED):
        self.ckpt_path = str(Path(dirpath) / f"{filename}.ckpt")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.global_step == 0:
            return  # nothing trained yet (e.g. a config error in setup)
        why = "an interrupt" if isinstance(exception, (KeyboardInterrupt, SystemExit)) else type(exception).__name__
        try:
            trainer.save_checkpoint(self.ckpt_path)
        except Exception as exc:  # e.g. a full disk: keep the exception that stopped the run in front
            log.warning("could not save %s (%s: %s)", self.ckpt_path, type(exc).__name__, exc)
            return
        if trainer.is_global_zero:
            log.warning("training stopped by %s at step %d; saved %s: resume with ckpt_path=%s", why,
                        trainer.global_step, self.ckpt_path, self.ckpt_path)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.ckpt_path and Path(trainer.ckpt_path).resolve() == Path(self.ckpt_path).resolve():
            return
        if stage == "fit":
            trainer.strategy.remove_checkpoint(self.ckpt_path)


def train(cfg: DictConfig) -> dict:
    """Fit ``cfg.model`` on ``cfg.data``; returns the final metrics and the checkpoint path."""
    ensure_writable_dir(cfg.paths.output_dir)  # checkpoints and logs go there: fail now, not after an epoch
    check_training_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    # Plain containers, so that saved hyperparameters load with torch.load(weights_only=True).
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    wanted = getattr(model, "train_mode", None)
    if wanted and datamodule.train_mode != wanted:
        raise ValueError(f"{type(model).__name__} trains on crops with the engine's affinities: set "
                         f"data.train_mode={wanted} and data.teacher_dir (it is {datamodule.train_mode!r})")
    if getattr(model, "needs_labels", False) and datamodule.train_mode != "labeled":
        raise ValueError(f"{type(model).__name__} trains on labeled crops: set data.train_mode=labeled "
                         f"(it is {datamodule.train_mode!r}, which yields raw crops without labels)")
    check_crop_size(datamodule, model)
    datamodule.prepare_data()  # (the synthetic set is made here) the record and the nucleus size read the frames
    record = training_record(cfg, datamodule)
    if cfg.get("ckpt_path"):
        check_resume_checkpoint(cfg.ckpt_path, model)
        check_resumed_record(cfg.ckpt_path, record)
    diameter, how = training_diameter(datamodule)
    log.info("nucleus diameter of the training data: %s (%s); checkpoints record it",
             "unknown" if diameter is None else f"{diameter:.1f} px", how)
    interrupted = InterruptCheckpoint(Path(cfg.paths.output_dir) / "checkpoints", INTERRUPTED)
    trainer = build_trainer(cfg, callbacks=[NucleusSizeRecorder(diameter, how, record), interrupted])
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).exists():
        raise FileNotFoundError(f"{ckpt_path}: checkpoint to resume from not found")
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = None
    if trainer.checkpoint_callback is not None:
        best = trainer.checkpoint_callback.best_model_path or trainer.checkpoint_callback.last_model_path
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    log.info("final metrics: %s; checkpoint: %s", metrics, best)
    # Labeled instances the label budget left (train_mode=labeled), for experiments over budgets.
    return {"metrics": metrics, "checkpoint": best, "global_step": int(trainer.global_step),
            "n_train_instances": getattr(datamodule, "n_train_instances", None)}
