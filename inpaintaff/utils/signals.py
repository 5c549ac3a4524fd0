"""SIGTERM stops a run as Ctrl-C does: at the next safe point, with what is resumable saved, non-zero.

``kill``, ``timeout`` and a cluster's scheduler at the end of a job's time send SIGTERM. Lightning
2.6 only notes it (``trainer.received_sigterm``; its training and evaluation loops then raise
``SIGTERMException``, a ``SystemExit`` with status 0, and its predict loop runs on to the end). The
entry points (``predict.py``, ``train.py``, ``inpaintaff segment``) run inside
:func:`sigterm_stops`, which installs :func:`_on_sigterm`:

* inside a Lightning run, the signal is noted and :class:`StopOnSigterm` (a callback every
  ``build_trainer`` trainer carries) raises :class:`Terminated` at the next batch start or loop end,
  so the batch under way is finished and Lightning's ``on_exception`` hooks save as on Ctrl-C (the
  affinity writer's partial sums, the training checkpoint ``interrupted.ckpt``);
* anywhere else (or at a second SIGTERM), :class:`Terminated` is raised at once, as Ctrl-C raises
  ``KeyboardInterrupt``.

The process then exits with status 143 (128 + SIGTERM) and a log line saying how to resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import weakref
from collections.abc import Iterator

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerStatus

log = logging.getLogger(__name__)

EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised for SIGTERM where Ctrl-C raises ``KeyboardInterrupt`` (and handled the same way)."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")


class _State:
    received = False  # a SIGTERM arrived
    stopping = False  # Terminated was raised: further signals wait for the saving to end
    pid: int | None = None  # the process whose handler this is (DataLoader workers inherit it)
    trainers: weakref.WeakSet = weakref.WeakSet()


def _in_lightning_run() -> bool:
    return any(t.state.status == TrainerStatus.RUNNING for t in list(_State.trainers))


def _raise() -> None:
    _State.stopping = True
    raise Terminated()


def _on_sigterm(signum: int, frame) -> None:
    if os.getpid() != _State.pid:  # a forked worker: the main process stops it
        return
    if _State.stopping:
        log.warning("SIGTERM again: still saving what is done, then stopping")
        return
    if _State.received:
        log.warning("SIGTERM again: stopping now")
        _raise()
    _State.received = True
    if _in_lightning_run():
        log.warning("Received SIGTERM: stopping after the batch under way; what is done is saved")
        return
    log.warning("Received SIGTERM: stopping now, as on Ctrl-C; what is done is kept")
    _raise()


def stop_if_terminated() -> None:
    """Raise :class:`Terminated` if a SIGTERM arrived (a safe point between pieces of work)."""
    if _State.received and not _State.stopping and os.getpid() == _State.pid:
        _raise()


class StopOnSigterm(pl.Callback):
    """Stops a Lightning run at its next safe point after SIGTERM, as Ctrl-C would stop it.

    Besides this process's flag it reads ``trainer.received_sigterm``: processes that Lightning
    started (ddp) are signalled by their launcher and have no handler of ours.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _State.trainers.add(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        if _State.stopping:
            return
        if (_State.received and os.getpid() == _State.pid) or trainer.received_sigterm:
            log.warning("stopping on SIGTERM")
            _raise()

    def on_train_batch_start(self, trainer, *_) -> None:
        self._check(trainer)

    def on_validation_batch_start(self, trainer, *_) -> None:
        self._check(trainer)

    def on_test_batch_start(self, trainer, *_) -> None:
        self._check(trainer)

    def on_predict_batch_start(self, trainer, *_) -> None:
        self._check(trainer)

    def on_fit_end(self, trainer, *_) -> None:
        self._check(trainer)

    def on_test_end(self, trainer, *_) -> None:
        self._check(trainer)

    def on_predict_end(self, trainer, *_) -> None:
        self._check(trainer)


def _reset() -> None:
    _State.received = _State.stopping = False
    _State.trainers = weakref.WeakSet()


@contextlib.contextmanager
def sigterm_stops(resume_hint: str = "run the same command again to resume") -> Iterator[None]:
    """Run the block with SIGTERM handled as described above; exit with status 143 if it came.

    Outside the main thread (where no handler can be set) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_term, previous_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    _reset()
    _State.pid = os.getpid()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except BaseException:
        if not _State.received:
            raise
        # Terminated, Lightning's SystemExit after it (its Ctrl-C path ends in sys.exit(1)), or its
        # SIGTERMException: the run stopped for the signal.
        log.error("stopped by SIGTERM (exit status %d): %s", EXIT_SIGTERM, resume_hint)
        raise SystemExit(EXIT_SIGTERM) from None
    else:
        if _State.received:
            log.error("SIGTERM received as the run ended; its work is done (exit status %d)", EXIT_SIGTERM)
            raise SystemExit(EXIT_SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)  # Lightning ignores Ctrl-C once it is shutting down
        _reset()
        _State.pid = None
