"""The embedded default data: synthetic HeLa-like fluorescent nuclei in the CTC layout.

Nuclei are ellipses packed in dense clusters; where two ellipses overlap, each pixel goes to the
nucleus whose (normalised) centre distance is smaller, so touching nuclei share a boundary with
no gap and little intensity evidence. Each nucleus has its own brightness and texture; the frame
is blurred and gets Poisson-Gaussian noise. Labels are exact.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from inpaintaff.io import ctc
from inpaintaff.utils.labels import relabel_consecutive

log = logging.getLogger(__name__)

# Written into every dataset folder make_synthetic_dataset makes: the folder is the generator's.
MARKER = ".inpaintaff_synthetic"
_SEQ_RE = re.compile(r"^(\d{2})$")
_FRAME_RE = re.compile(r"^t(\d{3})\.tif$")
_SEG_RE = re.compile(r"^man_seg(\d{3})\.tif$")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered noise."""
    n = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return (n - n.mean()) / (n.std() + 1e-8)


def _cluster_centres(
    rng: np.random.Generator, shape: tuple[int, int], n_nuclei: int, radius: float
) -> np.ndarray:
    """Centres grouped in clusters: each new nucleus sits next to an existing one or starts a cluster."""
    h, w = shape
    centres: list[np.ndarray] = []
    tries = 0
    while len(centres) < n_nuclei and tries < 50 * n_nuclei:
        tries += 1
        if not centres or rng.random() < 0.15:
            c = rng.uniform([radius, radius], [h - radius, w - radius])
        else:
            anchor = centres[rng.integers(len(centres))]
            angle = rng.uniform(0, 2 * np.pi)
            c = anchor + rng.uniform(1.5, 1.9) * radius * np.array([np.sin(angle), np.cos(angle)])
        if not (0 <= c[0] < h and 0 <= c[1] < w):
            continue
        if centres and np.min(np.linalg.norm(np.array(centres) - c, axis=1)) < 1.3 * radius:
            continue
        centres.append(c)
    return np.array(centres)


def synthetic_frame(
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    radius: float = 10.0,
    density: float = 0.45,
    gain: float = 150.0,
    read_noise: float = 3.0,
    blur: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic frame: (raw uint16 image, int32 instance labels, 0 = background)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    n_nuclei = max(2, int(density * h * w / (np.pi * radius**2)))
    centres = _cluster_centres(rng, shape, n_nuclei, radius)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    best = np.full(shape, np.inf, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.int32)
    # Smooth field that wobbles every nucleus outline.
    wobble = 0.12 * _smooth_noise(rng, shape, 3.0)
    for i, (cy, cx) in enumerate(centres, start=1):
        a = radius * rng.uniform(0.8, 1.3)
        b = a * rng.uniform(0.65, 1.0)
        theta = rng.uniform(0, np.pi)
        r = int(np.ceil(a * 1.4)) + 2
        y0, y1 = max(0, int(cy) - r), min(h, int(cy) + r + 1)
        x0, x1 = max(0, int(cx) - r), min(w, int(cx) + r + 1)
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        u = (dy * np.cos(theta) + dx * np.sin(theta)) / a
        v = (-dy * np.sin(theta) + dx * np.cos(theta)) / b
        dist = np.sqrt(u**2 + v**2) + wobble[y0:y1, x0:x1]
        sub_best = best[y0:y1, x0:x1]
        win = (dist < 1.0) & (dist < sub_best)
        sub_best[win] = dist[win]
        labels[y0:y1, x0:x1][win] = i

    # Drop nuclei that other nuclei covered almost completely, relabel consecutively.
    sizes = np.bincount(labels.ravel(), minlength=len(centres) + 1)
    keep = sizes >= 0.25 * np.pi * radius**2
    keep[0] = False
    labels = relabel_consecutive(np.where(keep[labels], labels, 0)).astype(np.int32)

    n = int(labels.max())
    brightness = np.concatenate([[0.0], rng.uniform(0.45, 1.0, n)]).astype(np.float32)
    texture_amp = np.concatenate([[0.0], rng.uniform(0.04, 0.15, n)]).astype(np.float32)
    texture = _smooth_noise(rng, shape, 1.5)
    # Nuclei are slightly dimmer towards their rim: little, but not zero, boundary evidence.
    rim = np.clip(best, 0, 1) if np.isfinite(best).any() else np.zeros(shape)
    rim = np.where(labels > 0, 1.0 - 0.25 * rim**4, 0.0)
    clean = brightness[labels] * rim * (1.0 + texture_amp[labels] * texture)
    clean = 0.06 + 0.02 * _smooth_noise(rng, shape, 20.0) + clean
    clean = ndi.gaussian_filter(clean, blur)
    photons = rng.poisson(np.clip(clean, 0, None) * gain).astype(np.float32)
    raw = photons + rng.normal(100.0, read_noise, shape)
    raw = np.clip(np.round(raw), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return raw, labels


def make_synthetic_dataset(
    root: str | Path,
    dataset: str = "SYNTH-HeLa",
    n_sequences: int = 2,
    n_frames: int = 6,
    shape: tuple[int, int] | list[int] = (256, 256),
    seed: int = 0,
) -> Path:
    """Write ``n_sequences`` sequences of ``n_frames`` frames with full GT in the CTC layout."""
    root = Path(root)
    shape = tuple(int(s) for s in shape)
    # The marker comes first, so that even an interrupted generation leaves a folder known as the generator's.
    (root / dataset).mkdir(parents=True, exist_ok=True)
    params = {"n_sequences": n_sequences, "n_frames": n_frames, "shape": list(shape), "seed": seed}
    (root / dataset / MARKER).write_text(json.dumps({"generator": "inpaintaff.data.synthetic", **params}) + "\n")
    for s in range(1, n_sequences + 1):
        seq = f"{s:02d}"
        for t in range(n_frames):
            raw, labels = synthetic_frame(shape, seed=seed * 100_003 + s * 1009 + t)
            ctc.write_image(root / dataset / seq / f"t{t:03d}.tif", raw)
            ctc.write_labels(root / dataset / f"{seq}_GT" / "SEG" / f"man_seg{t:03d}.tif", labels)
    log.info("wrote synthetic dataset %s (%d x %d frames of %s)", root / dataset, n_sequences, n_frames, shape)
    return root / dataset


def _names(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if not f.name.startswith(".")]


def _legacy_layout(folder: Path) -> bool:
    """A dataset folder exactly as earlier versions of make_synthetic_dataset left it (no marker):
    sequences ``01``, ``02``, ... holding only ``t000.tif``, ``t001.tif``, ... and, for each, ``NN_GT/SEG``
    holding exactly the matching ``man_segNNN.tif``. Real CTC downloads differ (TRA folders, sparse SEG)."""
    entries = _names(folder)
    seqs = sorted(f.name for f in entries if f.is_dir() and _SEQ_RE.match(f.name))
    if not seqs or seqs != [f"{i:02d}" for i in range(1, len(seqs) + 1)]:
        return False
    if {f.name for f in entries} != {*seqs, *(f"{q}_GT" for q in seqs)}:
        return False
    for seq in seqs:
        gt = folder / f"{seq}_GT"
        if not gt.is_dir() or {f.name for f in _names(gt)} != {"SEG"} or not (gt / "SEG").is_dir():
            return False
        frames = [f.name for f in _names(folder / seq)]
        segs = [f.name for f in _names(gt / "SEG")]
        if not all(_FRAME_RE.match(n) for n in frames) or not all(_SEG_RE.match(n) for n in segs):
            return False
        numbers = sorted(int(n[1:4]) for n in frames)
        if numbers != list(range(len(numbers))) or sorted(int(n[7:10]) for n in segs) != numbers:
            return False
    return True


def is_generated_dataset(folder: str | Path) -> bool:
    """Whether ``folder`` is a dataset folder make_synthetic_dataset wrote (its marker, or the exact
    layout of earlier, unmarked versions)."""
    folder = Path(folder)
    return folder.is_dir() and ((folder / MARKER).is_file() or _legacy_layout(folder))


def foreign_entries(root: str | Path) -> list[Path]:
    """What in ``root`` the generator did not write (hidden files aside): synthetic data may be generated
    into ``root`` only when this is empty (``root`` missing, empty, or holding generated datasets only)."""
    root = Path(root)
    if not root.exists():
        return []
    if not root.is_dir():
        return [root]
    return sorted(f for f in _names(root) if not is_generated_dataset(f))
