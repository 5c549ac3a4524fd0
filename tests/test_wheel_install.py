"""The wheel a user installs: built from this checkout, installed (not editable) into a fresh venv,
and its ``inpaintaff segment DIR`` console command run from another folder.

The fresh venv gets no copies of the dependencies: a ``.pth`` file in its own site-packages appends
the current environment's site-packages to ``sys.path``. Those entries come after the venv's own
site-packages, and ``.pth`` files inside them are not run (so the checkout's editable-install hook
stays off): the ``inpaintaff`` imported is the wheel's, which the test checks. Offline: the build
uses the current environment's setuptools (``--no-build-isolation``) and the install ``--no-index``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from inpaintaff.data.synthetic import synthetic_frame

PROJECT_DIR = Path(__file__).resolve().parents[1]
# What the installed command needs besides the code: the configs it composes and the default checkpoints.
PACKAGE_DATA = ("inpaintaff/conf/predict.yaml", "inpaintaff/conf/task/segment_folder.yaml",
                "inpaintaff/conf/data/folder.yaml", "inpaintaff/checkpoints/hela_distill_tuned_cpu.ckpt",
                "inpaintaff/checkpoints/hela_distill_tuned_cpu.alpha.json",
                "inpaintaff/checkpoints/hela_fgnet_cpu.ckpt",
                "inpaintaff/checkpoints/hela_distill_cpu.ckpt", "inpaintaff/checkpoints/hela_distill_cpu.alpha.json")
# Left out of the copy that is built (build outputs, environments, results).
_ROOT_JUNK = {".git", ".venv", "build", "dist", "runs", "outputs", "multirun", "lightning_logs", "data", ".whl",
              ".pytest_cache", ".ruff_cache"}

pytestmark = pytest.mark.slow


def _run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _source_copy(dest: Path) -> Path:
    """The checkout's files (tracked and untracked, not ignored) copied to ``dest``, so that the build's
    ``build/`` and ``*.egg-info`` never touch the checkout and stale ``build/lib`` files never enter
    the wheel."""
    files = None
    if (PROJECT_DIR / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(["git", "-C", str(PROJECT_DIR), "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard"], capture_output=True)
        if proc.returncode == 0:
            files = [f for f in proc.stdout.decode().split("\0") if f]
    if files is None:  # an exported tree without git
        def ignore(folder: str, names: list[str]) -> set[str]:
            junk = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
            return junk | (_ROOT_JUNK & set(names) if Path(folder) == PROJECT_DIR else set())

        shutil.copytree(PROJECT_DIR, dest, symlinks=True, ignore=ignore)
        return dest
    for rel in files:
        src, dst = PROJECT_DIR / rel, dest / rel
        if not src.exists() and not src.is_symlink():  # deleted but not yet staged
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return dest


def _dependency_dirs() -> list[str]:
    """The current environment's site-packages (where the dependencies are installed)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    out: list[str] = []
    for d in dirs:
        if Path(d).is_dir() and d not in out:
            out.append(d)
    return out


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who activated the fresh venv: no PYTHONPATH (it would put the
    checkout first), the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
                                                            "PYTHONNOUSERSITE", "VIRTUAL_ENV")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_installs_and_its_command_segments_a_folder(tmp_path: Path) -> None:
    # The wheel, built from a copy of the checkout with this environment's setuptools.
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)], timeout=120)
    wheels = sorted(dist.glob("inpaintaff-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
    missing = [p for p in PACKAGE_DATA if p not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert "inpaintaff/cli.py" in names and "inpaintaff/api.py" in names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "conf/", "checkpoints/")) for n in names)

    # A fresh venv without pip or dependencies; the wheel goes in with this environment's pip
    # (``--python``), before the dependencies are made visible (so pip sees no inpaintaff there).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=60)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
          str(wheels[0])], timeout=120)
    own = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    timeout=30).stdout.strip())
    (own / "_inpaintaff_test_deps.pth").write_text("".join(f"{d}\n" for d in _dependency_dirs()))

    env = _clean_env(venv)
    work = tmp_path / "elsewhere"  # the user's folder: not the checkout
    work.mkdir()
    probe = _run([str(py), "-c", "import json, sys, inpaintaff, torch; "
                                 "print(json.dumps({'file': inpaintaff.__file__, 'path': sys.path}))"],
                 timeout=60, cwd=work, env=env)
    info = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(venv.resolve()), \
        f"inpaintaff imported from {info['file']}, not from the fresh venv {venv}"
    assert info["path"].index(str(own)) < min(info["path"].index(d) for d in _dependency_dirs() if d in info["path"])

    # Two synthetic images of different shapes, run through the installed console script.
    images = work / "my images"
    images.mkdir()
    shapes = {"well A1": (96, 128), "w02": (112, 88)}
    for i, (name, shape) in enumerate(shapes.items()):
        raw, _ = synthetic_frame(shape, seed=i + 1, radius=12.0, density=0.3)
        tifffile.imwrite(images / f"{name}.tif", raw)
    script = venv / "bin" / "inpaintaff"
    assert script.is_file()
    assert str(venv) in script.read_text().splitlines()[0], "the console script runs another interpreter"
    out = work / "results"
    proc = _run([str(script), "segment", str(images), "--out", str(out), "trainer.enable_progress_bar=false"],
                timeout=240, cwd=work, env=env)
    assert "2 image(s)" in proc.stdout

    masks = {p.stem: tifffile.imread(p) for p in (out / "masks").glob("*.tif")}
    assert sorted(masks) == sorted(shapes)
    for name, shape in shapes.items():
        assert masks[name].shape == shape
        assert masks[name].max() > 0, f"{name}: no object found"
    with open(out / "images.csv", newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(shapes)
    for name, shape in shapes.items():
        assert (int(rows[name]["height"]), int(rows[name]["width"])) == shape
    result = json.loads((out / "segment_folder_result.json").read_text())
    assert result["n_images"] == 2
    for ckpt in result["checkpoints"].values():  # the defaults are the wheel's own checkpoints
        assert ckpt is None or Path(ckpt).resolve().is_relative_to(venv.resolve()), ckpt
    assert np.all([m.dtype.kind in "iu" for m in masks.values()])
