"""Prediction callback: accumulates patch affinities per frame, merges ranks, writes, resumes.

Every process keeps sums and counts per frame and saves them, with the ids of the patches it has
done, to its own partial file ``<out>/.partial/<dataset>/<seq>_tNNN__<token>.npz`` (small integers,
compressed) every ``save_every_n_batches`` batches, when it moves on to a later frame, and when the
run stops on an exception or Ctrl-C (``on_exception``). A frame is written
(``inpaintaff.io.affinities`` layout) once partial files cover all its patches: at once on a single
device, after a barrier at the end of the epoch with several. Merging files rather than tensors
makes resuming free: a new run skips the patch ids its partial files name and adds their sums.
Sums of 0/1 values are exact in float32, so one device and N devices write the same numbers.
Files have the whole frame's size; with a crop, pairs outside it are invalid (never seen).
Partial and written files carry the run's settings and each frame's own record (the SHA-1 of its
input file, ``frame_settings``); a new run with other settings or inputs stops with an error saying
which ones differ, rather than mixing or reusing results.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from inpaintaff.igm.affinities import AffinityAccumulator
from inpaintaff.igm.split import BATCHING_KNOBS, END_REASONS
from inpaintaff.io.affinities import aff_path, read_affinity_metadata, write_affinities
from inpaintaff.io.files import atomic_path
from inpaintaff.offsets import OFFSETS
from inpaintaff.tasks.inpaintaff.patches import FrameInfo
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

STAT_KEYS = ("patches", "forward_passes", "conditionals", "seconds", "splits", "steps", "leaves", *END_REASONS)
PARTIAL_KEYS = ("sums", "counts", "done", "stats", "settings", "s_image", "s_leaf", "s_pos")


def partial_dir(out_dir: str | Path, dataset: str) -> Path:
    return Path(out_dir) / ".partial" / dataset


def samples_path(out_dir: str | Path, dataset: str, info: FrameInfo) -> Path:
    """A few patches with their leaves, saved beside the affinities for pictures."""
    path = aff_path(out_dir, dataset, info.seq, info.frame, info.stem)
    return path.with_name(f"{path.stem}_patches.npz")


def _partials(out_dir: Path, dataset: str, info: FrameInfo) -> list[Path]:
    d = partial_dir(out_dir, dataset)
    return sorted(d.glob(f"{info.file_stem}__*.npz")) if d.is_dir() else []


# Settings added after files were first written, with the value that files without them had.
LATER_SETTINGS = {"hierarchies_per_patch": 1, "window": None, "scale": None, "ckpt_sha1": None, "normalize": None,
                  "channel": None, "input_sha1": None, "labels_sha1": None}
# Settings that older files carry but that only batch the work (results do not depend on them).
BATCHING_SETTINGS = tuple(f"engine.{k}" for k in BATCHING_KNOBS)


def settings_diff(saved: Mapping, now: Mapping, prefix: str = "") -> list[str]:
    """The settings that differ, as "key: <saved> in the file, <now> now" (nested keys joined by dots)."""
    if not prefix:
        saved, now = {**LATER_SETTINGS, **saved}, {**LATER_SETTINGS, **now}
    out = []
    for k in sorted(set(saved) | set(now)):
        if f"{prefix}{k}" in BATCHING_SETTINGS:
            continue
        a, b = saved.get(k), now.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += settings_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {json.dumps(a)} in the file, {json.dumps(b)} now")
    return out


def _describe(diff: list[str], limit: int = 4) -> str:
    return "; ".join(diff[:limit]) + (f"; and {len(diff) - limit} more" if len(diff) > limit else "")


def _small_ints(a: np.ndarray) -> np.ndarray:
    """Whole-number sums or counts in the smallest unsigned type that holds them (for compact files)."""
    top = int(a.max()) if a.size else 0
    return a.astype(np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32)


def _load_partial(path: Path, settings: dict) -> dict[str, Any]:
    """A partial file's arrays; an unreadable or foreign file, or other settings, are errors naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        missing = [k for k in PARTIAL_KEYS if k not in data]
        if missing:
            raise ValueError(f"not a partial result of this writer: no {', '.join(missing)}")
        saved = json.loads(str(data["settings"]))
        data["sums"], data["counts"] = data["sums"].astype(np.float32), data["counts"].astype(np.int32)
    except Exception as exc:  # np.load raises many kinds for damaged or foreign files
        raise InputError(path, f"cannot read this partial result ({type(exc).__name__}: {exc}); delete the folder "
                         f"{path.parent} (or only this file) and run again: its patches are then recomputed") from exc
    diff = settings_diff(saved, settings)
    if diff:
        raise InputError(path, f"partial results made with other settings ({_describe(diff)}): delete the folder "
                         f"{path.parent} or choose another task.out_dir")
    return data


def check_written(path: Path, settings: dict) -> None:
    """An error naming the differing settings if the finished file ``path`` was made with other ones."""
    meta = read_affinity_metadata(path)
    saved = {k: meta[k] for k in [*settings, *LATER_SETTINGS] if k in meta}
    if not any(k in meta for k in settings):
        problem = "affinities without the engine settings in their metadata (not written by task=inpaintaff)"
    else:
        diff = settings_diff(saved, settings)
        if not diff:
            return
        problem = f"affinities written with other settings ({_describe(diff)})"
    raise InputError(path, f"{problem}: choose another task.out_dir, or set task.overwrite=true to recompute them")


def _partial_matches(path: Path, settings: dict) -> bool:
    """Whether a partial file is readable and was made with ``settings``."""
    try:
        _load_partial(path, settings)
    except InputError:
        return False
    return True


def frame_settings_of(settings: Mapping, frame_settings: Mapping[str, Mapping] | None, info: FrameInfo) -> dict:
    """The run's settings with the frame's own record (its input's SHA-1, ...): what its files must carry."""
    return json.loads(json.dumps({**settings, **(frame_settings or {}).get(info.key, {})}))


def scan_done(out_dir: str | Path, dataset: str, frames: Sequence[FrameInfo], settings: dict,
              overwrite: bool = False, frame_settings: Mapping[str, Mapping] | None = None,
              ) -> tuple[set[str], dict[str, list[int]]]:
    """Frames already written (keys) and, for the others, patch ids that partial files hold.

    Written frames and partial files must have been made with ``settings`` and the frame's
    ``frame_settings`` (by frame key); otherwise this raises. With ``overwrite``, the frames'
    written files are deleted up front (they are redone) and so are partial files of other
    settings; partial files of these settings are resumed, so that an interrupted overwriting run
    resumes when run again, with or without ``overwrite``.
    """
    out_dir = Path(out_dir)
    written, done = set(), {}
    for info in frames:
        now = frame_settings_of(settings, frame_settings, info)
        path = aff_path(out_dir, dataset, info.seq, info.frame, info.stem)
        if overwrite:
            path.unlink(missing_ok=True)
            samples_path(out_dir, dataset, info).unlink(missing_ok=True)
            for p in _partials(out_dir, dataset, info):
                if not _partial_matches(p, now):
                    p.unlink(missing_ok=True)
        elif path.is_file():
            check_written(path, now)
            written.add(info.key)
            continue
        ids: set[int] = set()
        for p in _partials(out_dir, dataset, info):
            ids |= set(_load_partial(p, now)["done"].tolist())
        if ids:
            done[info.key] = sorted(ids)
    return written, done


class _FrameState:
    def __init__(self, info: FrameInfo, n_channels: int):
        self.acc = AffinityAccumulator(info.full_shape, n_channels)
        self.done: set[int] = set()
        self.stats = dict.fromkeys(STAT_KEYS, 0.0)
        self.samples: list[tuple[np.ndarray, np.ndarray, int, int]] = []
        self.dirty = False


class AffinityWriter(BasePredictionWriter):
    """Accumulates ``InpaintAffModule.predict_step`` outputs into per-frame affinity files."""

    def __init__(
        self,
        out_dir: str | Path,
        dataset: str,
        frames: Sequence[FrameInfo],
        settings: dict,
        offsets: Sequence[Sequence[int]] | None = None,
        save_every_n_batches: int = 20,
        n_samples: int = 4,
        metadata: dict | None = None,
        frame_metadata: dict[str, dict] | None = None,
        frame_settings: dict[str, dict] | None = None,
    ):
        super().__init__(write_interval="batch")
        self.out_dir, self.dataset = Path(out_dir), dataset
        self.frames = {f.index: f for f in frames}
        self.settings = json.loads(json.dumps(settings))  # plain, comparable with what files hold
        self.offsets = [list(map(int, o)) for o in (OFFSETS if offsets is None else offsets)]
        self.save_every, self.n_samples = int(save_every_n_batches), int(n_samples)
        self.metadata = dict(metadata or {})
        self.frame_metadata = dict(frame_metadata or {})  # by frame key, e.g. the frame's resizing
        self.frame_settings = dict(frame_settings or {})  # by frame key, compared like settings: its input's SHA-1
        self.token = uuid.uuid4().hex[:12]
        self.state: dict[int, _FrameState] = {}
        self.written: list[Path] = []
        self._finalized: set[str] = set()
        self._batches = 0
        self._rank, self._world = 0, 1
        self._adding = False  # True while a batch is half added: its frames' sums are then not saved

    # -- accumulation ---------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._rank, self._world = trainer.global_rank, trainer.world_size
        self.token = f"r{self._rank}-{uuid.uuid4().hex[:12]}"

    def _frame(self, fi: int) -> _FrameState:
        if fi not in self.state:
            st = _FrameState(self.frames[fi], len(self.offsets))
            own = partial_dir(self.out_dir, self.dataset) / f"{self.frames[fi].file_stem}__{self.token}.npz"
            if own.is_file():  # evicted earlier in this run: continue from what it saved
                self._restore(st, _load_partial(own, self._settings(self.frames[fi])))
            self.state[fi] = st
        return self.state[fi]

    def _settings(self, info: FrameInfo) -> dict:
        return frame_settings_of(self.settings, self.frame_settings, info)

    @staticmethod
    def _restore(st: _FrameState, data: dict[str, Any]) -> None:
        st.acc.merge(data["sums"], data["counts"])
        st.done |= set(data["done"].tolist())
        for k, v in json.loads(str(data["stats"])).items():
            st.stats[k] += v
        st.samples += [(im, leaf, int(y), int(x)) for im, leaf, (y, x) in zip(data["s_image"], data["s_leaf"],
                                                                             data["s_pos"])]

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        frames = prediction["frame"].tolist()
        n = len(frames)
        self._adding = True
        for i, fi in enumerate(frames):
            st = self._frame(fi)
            pid = int(prediction["patch_id"][i])
            if pid in st.done:
                continue
            info = self.frames[fi]
            y, x = int(prediction["y"][i]) + info.origin[0], int(prediction["x"][i]) + info.origin[1]
            st.acc.add(prediction["aff"][i].numpy(), prediction["valid"].numpy(), y, x)
            st.done.add(pid)
            st.dirty = True
            s = st.stats
            s["patches"] += 1
            for k in ("forward_passes", "conditionals", "seconds"):
                s[k] += float(prediction[k]) / n
            for k, v in prediction["stats"].items():
                s[k] += float(v[i])
            if self._rank == 0 and len(st.samples) < self.n_samples:
                st.samples.append((prediction["image"][i].numpy(), prediction["leaf_ids"][i].numpy(), y, x))
        self._adding = False
        self._batches += 1
        latest = max(frames)
        for fi in [f for f in self.state if f < latest]:  # frames come in order: earlier ones are done here
            self._flush(fi, drop=True)
        if self._world == 1:
            for fi in list(self.state):
                info = self.frames[fi]
                if info.key not in self._finalized and set(info.todo) <= self.state[fi].done:
                    self._flush(fi, drop=True)
                    self.finalize(info)
        if self.save_every and self._batches % self.save_every == 0:
            for fi in list(self.state):
                self._flush(fi)

    def _flush(self, fi: int, drop: bool = False) -> None:
        st = self.state.get(fi)
        if st is None:
            return
        if st.dirty:
            info = self.frames[fi]
            path = partial_dir(self.out_dir, self.dataset) / f"{info.file_stem}__{self.token}.npz"
            smp = st.samples
            p = int(self.settings.get("patch_size", 1))
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                # Sums of 0/1 affinities are whole numbers: stored exactly as small integers.
                np.savez_compressed(
                    fh, sums=_small_ints(st.acc.sums), counts=_small_ints(st.acc.counts),
                    done=np.array(sorted(st.done), dtype=np.int64),
                    stats=json.dumps(st.stats), settings=json.dumps(self._settings(info)),
                    s_image=np.array([s[0] for s in smp], dtype=np.float32).reshape(-1, p, p),
                    s_leaf=np.array([s[1] for s in smp], dtype=np.int64).reshape(-1, p, p),
                    s_pos=np.array([s[2:] for s in smp], dtype=np.int64).reshape(-1, 2),
                )
            st.dirty = False
        if drop:
            del self.state[fi]

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Save what this process has summed (Ctrl-C, a crash), so that a resumed run redoes none of it."""
        if self._adding:  # stopped inside a batch: sums and done ids may disagree
            log.warning("stopped while adding a batch: patches since the last save will be recomputed")
            return
        dirty = [fi for fi, st in self.state.items() if st.dirty]
        try:
            for fi in dirty:
                self._flush(fi)
        except Exception as exc:  # e.g. a full disk: keep the exception that stopped the run in front
            log.warning("could not save the partial sums (%s: %s)", type(exc).__name__, exc)
            return
        if dirty:
            log.info("saved the partial sums of %d frame(s) in %s: run again to resume", len(dirty),
                     partial_dir(self.out_dir, self.dataset))

    # -- merging and writing -------------------------------------------------------------
    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for fi in list(self.state):
            self._flush(fi, drop=True)
        trainer.strategy.barrier("affinity_writer_flush")
        if trainer.global_rank == 0:
            self.finalize_pending()
        trainer.strategy.barrier("affinity_writer_done")

    def finalize_pending(self) -> list[Path]:
        """Write every frame whose partial files cover all its patches (rank 0 only, no saving under way)."""
        d = partial_dir(self.out_dir, self.dataset)
        for tmp in d.glob(".*.tmp.npz") if d.is_dir() else []:  # left by a process killed while saving
            log.info("removing the unfinished temporary file %s", tmp)
            tmp.unlink(missing_ok=True)
        out = []
        for info in self.frames.values():
            if info.skipped or info.key in self._finalized:
                continue
            if info.todo or not info.active or _partials(self.out_dir, self.dataset, info):
                path = self.finalize(info)
                if path is not None:
                    out.append(path)
        return out

    def finalize(self, info: FrameInfo) -> Path | None:
        """Merge the partial files of one frame and write it, if they cover all its patches."""
        files = _partials(self.out_dir, self.dataset, info)
        acc = AffinityAccumulator(info.full_shape, len(self.offsets))
        done: set[int] = set()
        n_done = 0
        stats = dict.fromkeys(STAT_KEYS, 0.0)
        images, leaves, pos = [], [], []
        settings = self._settings(info)
        for f in files:
            data = _load_partial(f, settings)
            acc.merge(data["sums"], data["counts"])
            ids = data["done"].tolist()
            done |= set(ids)
            n_done += len(ids)
            for k, v in json.loads(str(data["stats"])).items():
                stats[k] += v
            images += list(data["s_image"])
            leaves += list(data["s_leaf"])
            pos += list(data["s_pos"])
        if n_done != len(done):  # e.g. two runs (before folders were locked) summed the same patches
            raise InputError(files[0].parent, f"{info.key}: {n_done - len(done)} patch(es) counted twice in "
                             f"these partial results (two runs wrote into one folder?): delete the files "
                             f"{info.file_stem}__*.npz here (or the whole folder) and run again; their patches "
                             "are then recomputed")
        missing = set(info.active) - done
        if missing:
            log.warning("%s: %d of %d patches not done yet; not written", info.key, len(missing), len(info.active))
            return None
        aff, valid = acc.result()
        images, leaves, pos = images[: self.n_samples], leaves[: self.n_samples], pos[: self.n_samples]
        path = aff_path(self.out_dir, self.dataset, info.seq, info.frame, info.stem)
        meta = {
            **self.metadata, **self.frame_metadata.get(info.key, {}), **settings, "frame": info.frame,
            "seq": info.seq,
            "origin": list(info.origin), "n_patches": len(info.active), "stats": stats,
        }
        write_affinities(path, aff, valid, self.offsets, meta)
        with atomic_path(samples_path(self.out_dir, self.dataset, info)) as tmp, open(tmp, "wb") as fh:
            p = int(self.settings.get("patch_size", 1))
            np.savez(fh, image=np.array(images, dtype=np.float32).reshape(-1, p, p),
                     leaf_ids=np.array(leaves, dtype=np.int64).reshape(-1, p, p),
                     pos=np.array(pos, dtype=np.int64).reshape(-1, 2))
        for f in files:
            f.unlink()
        self.written.append(path)
        self._finalized.add(info.key)
        log.info("wrote %s (%d patches)", path, len(info.active))
        return path
