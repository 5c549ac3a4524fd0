"""One run at a time per output folder: a second run gets an error naming the first; a lock of a
dead process is taken over; the folder command and ``task=inpaintaff`` take it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inpaintaff.utils.errors import InputError
from inpaintaff.utils.locks import LOCK_NAME, acquire, folder_lock, release
from tests.test_sigterm import N_PATCHES, PROJECT, SLOW_AFF, _done_ids, _start, _wait_for

HOLD = ("import sys, time; from inpaintaff.utils.locks import acquire; acquire(sys.argv[1], 'a test');"
        "print('locked', flush=True); time.sleep(120)")


@pytest.fixture
def holder(tmp_path: Path):
    """Starts a process that locks a folder and keeps running; killed at the end."""
    procs = []

    def start(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=PROJECT, stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(PROJECT)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_run_gets_an_error_naming_the_first(tmp_path, holder) -> None:
    proc = holder(tmp_path / "out")
    with pytest.raises(InputError) as exc:
        acquire(tmp_path / "out", "task=x")
    msg = str(exc.value)
    assert f"pid {proc.pid} on host {socket.gethostname()}, started " in msg
    assert "another run is writing into" in msg and "delete this lock file" in msg
    assert (tmp_path / "out" / LOCK_NAME).is_file()


def test_a_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, holder, caplog) -> None:
    proc = holder(tmp_path / "out")
    proc.send_signal(signal.SIGKILL)  # as kill -9 or a crash: the lock file stays
    proc.wait()
    assert (tmp_path / "out" / LOCK_NAME).is_file()
    with caplog.at_level("WARNING", logger="inpaintaff.utils.locks"), folder_lock(tmp_path / "out", "task=x"):
        assert f"taking over the lock of a run that is gone (pid {proc.pid}" in caplog.text
        with folder_lock(tmp_path / "out", "a sub-task"):  # the same process again: fine
            pass
        assert (tmp_path / "out" / LOCK_NAME).is_file()
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    release(tmp_path / "out")  # not held: nothing happens


@pytest.mark.slow
def test_two_inpaintaff_runs_into_one_folder(compose, data_dir, tmp_path) -> None:
    """The second stops at once naming the first, and the folder stays good for a rerun."""
    from inpaintaff.tasks.inpaintaff import run

    out, log = tmp_path / "aff", tmp_path / "run.log"
    proc = _start("predict.py", [f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}",
                                 f"hydra.run.dir={tmp_path / 'run'}", f"task.out_dir={out}", *SLOW_AFF], log)
    try:
        _wait_for(lambda: (out / ".partial").is_dir() and bool(_done_ids(out)), proc, log)
        with pytest.raises(InputError, match=rf"another run is writing into .*pid {proc.pid} on host"):
            run(compose("predict", [*SLOW_AFF, f"task.out_dir={out}"]))
        assert proc.wait(120) == 0, log.read_text()[-3000:]
    finally:
        proc.kill()
    result = run(compose("predict", [*SLOW_AFF, f"task.out_dir={out}"]))  # all written: nothing counted twice
    assert result["totals"]["patches"] == N_PATCHES


def test_counted_twice_says_how_to_recover(compose, tmp_path, monkeypatch) -> None:
    from inpaintaff.tasks.inpaintaff import run
    from inpaintaff.tasks.inpaintaff.module import InpaintAffModule
    from inpaintaff.tasks.inpaintaff.writer import partial_dir

    quick = [*SLOW_AFF[:-1], "task.crop=[100,60,48,48]", "task.stride=16", f"task.out_dir={tmp_path / 'aff'}"]
    predict_step = InpaintAffModule.predict_step

    def interrupted(self, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 1:
            raise KeyboardInterrupt
        return predict_step(self, batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(InpaintAffModule, "predict_step", interrupted)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            run(compose("predict", quick))
    finally:
        signal.signal(signal.SIGINT, sigint)
    (partial,) = partial_dir(tmp_path / "aff", "SYNTH-HeLa").glob("*.npz")
    shutil.copy(partial, partial.with_name("02_t000__other-run.npz"))  # as a second run into the folder left it
    monkeypatch.setattr(InpaintAffModule, "predict_step", predict_step)
    with pytest.raises(InputError, match=r"counted twice.*delete the files 02_t000__\*\.npz here.*run again"):
        run(compose("predict", quick))
    for p in partial_dir(tmp_path / "aff", "SYNTH-HeLa").glob("02_t000__*.npz"):
        p.unlink()
    assert run(compose("predict", quick))["totals"]["patches"] > 0


def test_the_folder_command_takes_the_lock(tmp_path, holder, capsys) -> None:
    import tifffile

    from inpaintaff.cli import main
    from inpaintaff.data.synthetic import synthetic_frame

    imgs = tmp_path / "images"
    imgs.mkdir()
    tifffile.imwrite(imgs / "a.tif", synthetic_frame((64, 64), seed=1, radius=12.0, density=0.3)[0])
    out = tmp_path / "out"
    proc = holder(out)
    assert main(["segment", str(imgs), "--out", str(out), "trainer.enable_progress_bar=false"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"another run is writing into .*pid {proc.pid}", err), err
    assert not (out / "masks").exists()
    proc.kill()
    proc.wait()
    assert main(["segment", str(imgs), "--out", str(out), "trainer.enable_progress_bar=false"]) == 0
    assert not (out / LOCK_NAME).exists()
    assert np.asarray(tifffile.imread(out / "masks" / "a.tif")).shape == (64, 64)
