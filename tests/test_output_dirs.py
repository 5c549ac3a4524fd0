"""Output folders are checked before any work: a file in the way or a read-only folder fails at once."""

from __future__ import annotations

import os
import re

import pytest
from omegaconf import open_dict

from inpaintaff.io.files import ensure_writable_dir
from inpaintaff.tasks import run_task
from inpaintaff.train import train
from inpaintaff.utils.errors import InputError


def test_ensure_writable_dir(tmp_path):
    assert ensure_writable_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=rf"{re.escape(str(blocker))}: .*cannot"):
        ensure_writable_dir(blocker)
    with pytest.raises(InputError, match=rf"{re.escape(str(blocker / 'sub'))}: .*cannot"):
        ensure_writable_dir(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match=rf"{re.escape(str(ro))}: .*cannot"):
            ensure_writable_dir(ro)
    finally:
        ro.chmod(0o700)


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the output folders were checked")


@pytest.mark.parametrize("task,key", [
    ("inpaintaff", "task.out_dir"), ("segment", "task.res_root"), ("segment_select", "paths.output_dir"),
    ("report", "task.out_dir"), ("foreground", "task.out_dir"), ("affnet", "task.out_dir"),
])
def test_every_task_checks_its_output_folders_first(compose, tmp_path, monkeypatch, task, key):
    import hydra

    monkeypatch.setattr(hydra.utils, "instantiate", _no_work)  # data, nets, trainers: all built this way
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    cfg = compose("predict", [f"task={task}", "task.inpainter=gaussian"] if task == "inpaintaff" else [f"task={task}"])
    with open_dict(cfg):
        section, name = key.split(".")
        cfg[section][name] = str(blocker / "sub") if name == "output_dir" else str(blocker)
    with pytest.raises(InputError, match=rf"{re.escape(str(blocker))}"):
        run_task(cfg)


def test_training_checks_its_output_folder_first(compose, tmp_path, monkeypatch):
    import hydra

    monkeypatch.setattr(hydra.utils, "instantiate", _no_work)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cfg = compose("train", [])
    with open_dict(cfg):
        cfg.paths.output_dir = str(blocker)
    with pytest.raises(InputError, match=rf"{re.escape(str(blocker))}: .*cannot"):
        train(cfg)
