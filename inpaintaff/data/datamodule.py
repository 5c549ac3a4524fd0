"""LightningDataModule over a CTC-layout dataset: raw crops, labeled crops, and the frames of each split."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintaff.data.augment import Augment
from inpaintaff.data.budget import LABEL_DRAWS, budget_crop, choose_label_frames, count_instances
from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.data.pseudo import IGNORE_LABEL, PseudoLabels, crop_weights
from inpaintaff.data.sources import FrameRef
from inpaintaff.io import ctc
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

SPLITS = ("raw", "train", "val", "test", "predict")
TRAIN_MODES = ("raw", "labeled", "affinities")
# Splits whose frames default to "every frame with GT" rather than "every raw frame".
_LABELED_SPLITS = ("train", "val", "test")


class CropDataset(Dataset):
    """Random square crops of in-memory frames (labels optional); ``length`` crops per epoch.

    Crop positions come from torch's global RNG, which Lightning seeds (also in workers), so runs
    are reproducible and each epoch sees new crops.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        crop_size: int,
        length: int,
        labels: Sequence[np.ndarray] | None = None,
        fixed_seed: int | None = None,
        targets: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
        augment: Augment | None = None,
        weights: np.ndarray | None = None,
    ):
        if augment is not None and augment.active and targets is not None:
            raise ValueError("data.augment: the engine's affinity targets cannot be flipped (their offsets would turn)")
        self.augment = augment if augment is not None and augment.active else None
        self.images, self.labels = list(images), None if labels is None else list(labels)
        self.targets = None if targets is None else list(targets)  # (affinities, valid), each (C, H, W)
        self.crop, self.length, self.fixed_seed = int(crop_size), int(length), fixed_seed
        # Larger frames are drawn more often, so every pixel is equally likely to be seen (unless
        # ``weights`` give each image's probability).
        areas = np.array([im.size for im in self.images], dtype=np.float64) if weights is None else weights
        self.p = np.asarray(areas, dtype=np.float64) / np.sum(areas)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        if self.fixed_seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        else:
            seed = self.fixed_seed * 1_000_003 + idx
        rng = np.random.default_rng(seed)
        i = int(rng.choice(len(self.images), p=self.p))
        image = self.images[i]
        h, w = image.shape
        y = int(rng.integers(0, h - self.crop + 1))
        x = int(rng.integers(0, w - self.crop + 1))
        sl = (slice(y, y + self.crop), slice(x, x + self.crop))
        crop, labels = image[sl], None if self.labels is None else self.labels[i][sl]
        if self.augment is not None:
            crop, labels = self.augment(crop, labels, rng)
        out = {"image": torch.from_numpy(np.ascontiguousarray(crop))[None]}
        if labels is not None:
            out["labels"] = torch.from_numpy(np.ascontiguousarray(labels))
        if self.targets is not None:
            aff, valid = self.targets[i]
            out["target"] = torch.from_numpy(np.ascontiguousarray(aff[(slice(None), *sl)]))
            out["valid"] = torch.from_numpy(np.ascontiguousarray(valid[(slice(None), *sl)]))
        return out


class CTCDataModule(pl.LightningDataModule):
    """Serves a CTC-layout dataset by split.

    ``splits`` maps a split name (raw, train, val, test, predict) to a list of
    ``{seq, frames, exclude}`` entries; ``frames: null`` means every raw frame (split ``raw`` and
    ``predict``) or every frame with GT (``train``, ``val``, ``test``). ``train_mode`` chooses what
    the train loader yields: ``raw`` crops of the ``raw`` split (self-supervised), ``labeled``
    crops of the ``train`` split, reduced by the label budget (``label_frames``, ``max_instances``;
    ``label_draw``: the frames drawn at random, or ``by_shape`` in turn from each image shape),
    or ``affinities``: crops of the ``raw`` split with the affinities ``task=inpaintaff`` wrote
    for them below ``teacher_dir`` (the student's targets; no GT is read).

    ``resize_to`` (px): every training frame is first resized so that its nuclei have this diameter
    (``data.diameter``, or estimated per frame from its intensity foreground, without labels), so
    that a net learns one nucleus size from frames of many; teacher affinities are read at the
    scale they were computed at, which must be the same.

    ``augment`` (``data.augment``: flips, contrast, brightness, field, gamma, dim) changes the labeled training
    crops only (:class:`inpaintaff.data.augment.Augment`).
    """

    def __init__(
        self,
        root: str | Path,
        dataset: str,
        splits: Mapping[str, Sequence[Mapping]],
        train_mode: str = "raw",
        crop_size: int = 128,
        batch_size: int = 8,
        samples_per_epoch: int = 256,
        val_samples: int = 32,
        num_workers: int = 0,
        normalize: Mapping[str, float] | None = None,
        label_frames: int | None = None,
        max_instances: int | None = None,
        label_draw: str = "random",
        seed: int = 0,
        generate: Mapping | None = None,
        teacher_dir: str | Path | None = None,
        diameter: float | None = None,
        resize_to: float | None = None,
        augment: Mapping[str, Any] | None = None,
        pseudo: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if train_mode not in TRAIN_MODES:
            raise ValueError(f"data.train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
        if train_mode == "affinities" and not teacher_dir:
            raise ValueError("data.train_mode=affinities needs data.teacher_dir (task=inpaintaff's out_dir)")
        sizes = (("crop_size", crop_size), ("batch_size", batch_size), ("samples_per_epoch", samples_per_epoch))
        for key, value in sizes:
            if int(value) < 1:
                raise ValueError(f"data.{key} must be >= 1, got {value}")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)} in data.splits; known: {SPLITS}")
        self.root, self.dataset = Path(root), dataset
        self.splits = {k: [dict(e) for e in (v or [])] for k, v in splits.items()}
        self.train_mode, self.crop_size, self.batch_size = train_mode, int(crop_size), int(batch_size)
        self.samples_per_epoch, self.val_samples = int(samples_per_epoch), int(val_samples)
        self.num_workers = int(num_workers)
        self.normalize = dict(normalize or {"low": 1.0, "high": 99.8})
        self.label_frames, self.max_instances, self.seed = label_frames, max_instances, int(seed)
        if label_draw not in LABEL_DRAWS:
            raise ValueError(f"data.label_draw must be one of {LABEL_DRAWS}, got {label_draw!r}")
        self.label_draw = label_draw
        self.generate = dict(generate) if generate else None
        self.teacher_dir = None if teacher_dir is None else Path(teacher_dir)
        if diameter is not None and not float(diameter) > 0:
            raise ValueError(f"data.diameter must be a positive number of pixels (or null: estimate), got {diameter}")
        self.diameter = None if diameter is None else float(diameter)
        if resize_to is not None and not float(resize_to) > 0:
            raise ValueError(f"data.resize_to must be a positive nucleus diameter in pixels (or null), got {resize_to}")
        self.resize_to = None if resize_to is None else float(resize_to)
        self.augment = Augment(**dict(augment or {}))
        self.pseudo = PseudoLabels(**dict(pseudo or {}))
        if self.pseudo.active and train_mode != "labeled":
            raise ValueError("data.pseudo (pseudo-labeled frames) needs data.train_mode=labeled")
        self._cache: dict[tuple[Path, int | None], np.ndarray] = {}  # by (file, plane)
        self._train: Dataset | None = None
        self._val: Dataset | None = None

    # -- files -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Generate the synthetic data set when configured and absent (only into a folder the generator
        owns: missing, empty, or holding generated data sets only); check the dataset folder is there."""
        own_images = "to segment your own images use `data=folder data.images=<folder>`"
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "data.root is a file, not a folder: data.root must be the folder that holds "
                                        f"the CTC dataset folder {self.dataset}/ (with <seq>/tNNN.tif); {own_images}")
        if self.generate and not (self.root / self.dataset).exists():
            from inpaintaff.data.synthetic import foreign_entries, make_synthetic_dataset

            foreign = foreign_entries(self.root)
            if foreign:
                names = ", ".join(f.name for f in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise InputError(
                    self.root,
                    f"data.root holds no {self.dataset}/ folder, and data.generate is set: synthetic data are "
                    "generated only into a missing or empty folder, or one holding only generated data sets, but "
                    f"this folder holds {len(foreign)} other item(s) ({names}). To segment your own images "
                    "use `data=folder data.images=<folder>`; for a CTC dataset folder under data.root set "
                    "data.dataset=<name> and data.generate=null (or use data=ctc_hela / data=ctc_panc)")
            make_synthetic_dataset(self.root, self.dataset, **self.generate)
        if not self.root.is_dir():
            raise InputError(self.root, "data root not found (set data.root to the folder holding the CTC dataset "
                                        f"folder {self.dataset}/; {own_images})")
        if not (self.root / self.dataset).is_dir():
            what = "is a file, not a folder" if (self.root / self.dataset).exists() else "not found under data.root"
            raise InputError(self.root / self.dataset, f"dataset folder {what} (check data.dataset)")

    def frames(self, split: str) -> list[FrameRef]:
        """The frames of a split; a missing raw frame (or GT of an explicitly listed labeled frame)
        is an error naming the file, and so is an entry of the split that yields no frame (a split with
        no entries is empty)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
        refs: list[FrameRef] = []
        for entry in self.splits.get(split, []):
            seq = str(entry["seq"])
            frames = entry.get("frames")
            if frames is None:
                if split in _LABELED_SPLITS:
                    frames = ctc.list_gt_frames(self.root, self.dataset, seq)
                else:
                    frames = ctc.list_raw_frames(self.root, self.dataset, seq)
            exclude = {int(f) for f in entry.get("exclude") or []}
            found = 0
            for f in (int(f) for f in frames):
                if f in exclude:
                    continue
                raw = ctc.raw_path(self.root, self.dataset, seq, f)
                if split in _LABELED_SPLITS and entry.get("frames") is not None:
                    gt = ctc.gt_seg_path(self.root, self.dataset, seq, f)
                else:
                    try:
                        gt = ctc.gt_seg_path(self.root, self.dataset, seq, f)
                    except InputError:
                        gt = None
                refs.append(FrameRef(seq, f, raw, gt))
                found += 1
            if not found:
                self._no_frames(split, entry, seq, frames, exclude)
        return refs

    def load_raw(self, ref: FrameRef) -> np.ndarray:
        """The frame as stored, as float32 (not normalised)."""
        return ctc.read_image(ref.raw_path)

    def _no_frames(self, split: str, entry: Mapping, seq: str, frames: Sequence[int], exclude: set[int]) -> None:
        """The error for an entry of ``split`` that yields no frame, saying what was looked for."""
        listed = entry.get("frames")
        spec = f"split {split!r} entry {{seq: {seq!r}, frames: {'null' if listed is None else list(listed)}"
        spec += f", exclude: {sorted(exclude)}}}" if exclude else "}"
        fix = f"list frames that exist, or drop the entry (data.splits.{split}=[] for an empty split)"
        if frames:
            raise InputError(ctc.sequence_dir(self.root, self.dataset, seq),
                             f"{spec} yields no frame: exclude removes all {len(set(frames))} frame(s); {fix}")
        if listed is not None:
            raise InputError(ctc.sequence_dir(self.root, self.dataset, seq), f"{spec} lists no frame; {fix}")
        if split in _LABELED_SPLITS:
            raise InputError(self.root / self.dataset / f"{seq}_GT" / "SEG",
                             f"{spec} yields no frame: in split {split!r}, frames: null means every frame with a GT "
                             f"segmentation (man_segNNN.tif in this folder), and there is none; {fix}")
        raise InputError(ctc.sequence_dir(self.root, self.dataset, seq),
                         f"{spec} yields no frame: frames: null means every raw frame tNNN.tif (3 or 4 digits) "
                         f"in this folder, and there is none; {fix}")

    def load_image(self, ref: FrameRef) -> np.ndarray:
        """The frame, percentile-normalised (cached)."""
        key = (ref.raw_path, ref.plane)
        if key not in self._cache:
            raw = self.load_raw(ref)
            self._cache[key] = percentile_normalize(raw, source=ref.raw_path, **self.normalize)
        return self._cache[key]

    def load_labels(self, ref: FrameRef) -> np.ndarray:
        """The GT instance labels of the frame (error if it has none)."""
        if ref.gt_path is None:
            raise InputError(ref.raw_path, "this frame has no GT segmentation")
        labels = ctc.read_labels(ref.gt_path)
        if labels.shape != self.load_image(ref).shape:
            raise InputError(ref.gt_path, f"GT shape {labels.shape} differs from the raw frame's")
        return labels

    # -- datasets ----------------------------------------------------------------------------
    def training_frames(self) -> Any:
        """The frames as training sees them: resized to ``resize_to`` (a :class:`ScaledFrames` view),
        or this module itself."""
        if self.resize_to is None:
            return self
        if getattr(self, "_training_view", None) is None:
            from inpaintaff.data.scaled import TRAINING_SCALE, ScaledFrames

            self._training_view = ScaledFrames(self, self.resize_to, TRAINING_SCALE)
        return self._training_view

    def _check_size(self, ref: FrameRef, shape: tuple[int, ...]) -> None:
        if min(shape) < self.crop_size:
            raise InputError(ref.raw_path, f"image of shape {shape} is smaller than crop_size {self.crop_size}")

    def _budget(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        refs = [r for r in self.frames("train") if r.gt_path is not None]
        if not refs:
            raise InputError(self.root / self.dataset, "train_mode=labeled but the train split has no GT frames")
        groups = [self.load_raw(r).shape for r in refs] if self.label_draw == "by_shape" else None
        refs = choose_label_frames(refs, self.label_frames, self.seed, groups)
        frames = self.training_frames()
        images, labels, total = [], [], 0
        for ref in refs:
            lab = frames.load_labels(ref)
            sl = budget_crop(lab, self.max_instances)
            img, lab = frames.load_image(ref)[sl], lab[sl]
            pad = [(0, max(0, self.crop_size - n)) for n in img.shape]
            if any(p[1] for p in pad):
                # Crop smaller than a training crop: pad; padded labels are ignored by the loss.
                img = np.pad(img, pad, mode="reflect")
                lab = np.pad(lab, pad, constant_values=IGNORE_LABEL)
            total += count_instances(np.clip(lab, 0, None))
            images.append(img)
            labels.append(lab)
        log.info("label budget: %d frame(s), %d instance(s)", len(refs), total)
        if total == 0:
            names = ", ".join(f"{r.seq}/t{r.frame:03d}" for r in refs)
            raise InputError(self.root / self.dataset, f"train_mode=labeled: no labeled instance in the training "
                             f"frame(s) {names} (after the label budget, data.max_instances={self.max_instances}): "
                             "nothing to learn from; choose frames with objects, or a larger budget")
        self.n_train_instances = total
        return images, labels

    def _pseudo_labeled(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The ``raw`` split's frames with labels from the foreground probabilities below
        ``data.pseudo.dir`` (``PseudoLabels.labels``), at the scale training sees them."""
        from inpaintaff.io.foreground import foreground_path, read_probability
        from inpaintaff.utils.resize import resize

        refs = self.frames("raw")
        if not refs:
            raise InputError(self.root / self.dataset, "data.pseudo needs unlabeled frames: the raw split holds none")
        frames = self.training_frames()
        images, labels, n_fg, n_ignored = [], [], 0, 0
        for ref in refs:
            image = frames.load_image(ref)
            path = foreground_path(self.pseudo.dir, self.dataset, ref.seq, ref.frame, ref.stem)
            if not path.is_file():
                raise InputError(path, "data.pseudo.dir holds no foreground probabilities for this raw frame: run "
                                       "task=foreground with task.split=raw (and task.out_dir=data.pseudo.dir) first")
            prob = read_probability(path).astype(np.float32)
            if prob.shape != image.shape:
                prob = resize(prob, image.shape, order=1)  # written at the frame's scale, trained at another
            self._check_size(ref, image.shape)
            lab = self.pseudo.labels(prob)
            n_fg, n_ignored = n_fg + int((lab == 1).sum()), n_ignored + int((lab < 0).sum())
            images.append(image)
            labels.append(lab)
        total = sum(im.size for im in images)
        log.info("pseudo-labels: %d raw frame(s) from %s, %.1f %% foreground, %.1f %% ignored", len(refs),
                 self.pseudo.dir, 100 * n_fg / total, 100 * n_ignored / total)
        return images, labels

    def _teacher(self, split: str) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """Frames of ``split`` with the engine's affinities for them (train_mode=affinities)."""
        from inpaintaff.io.affinities import aff_path, read_affinities, read_affinity_metadata
        from inpaintaff.segment.scale import rescale_image

        refs = self.frames(split)
        if not refs and split == "raw":
            raise InputError(self.root / self.dataset, "train_mode=affinities but the raw split holds no frames")
        images, targets = [], []
        for ref in refs:
            path = aff_path(self.teacher_dir, self.dataset, ref.seq, ref.frame, ref.stem)
            aff, valid, _ = read_affinities(path)  # a missing file is an error naming it
            meta = read_affinity_metadata(path)
            teacher_diameter = (meta.get("scale") or {}).get("model_diameter")
            if self.resize_to is not None and teacher_diameter != self.resize_to:
                raise InputError(path, f"affinities computed for nuclei of {teacher_diameter} px, but "
                                       f"data.resize_to={self.resize_to:g}: compute them at that size")
            # At the scale the teacher saw the frame (the engine resizes to its nucleus size).
            image = rescale_image(self.load_image(ref), float(meta.get("scale_factor", 1.0)))
            if aff.shape[1:] != image.shape:
                raise InputError(path, f"affinities of shape {aff.shape[1:]} for a frame of shape {image.shape}")
            if not valid.any():
                raise InputError(path, "affinities without any valid pair: nothing to learn from")
            self._check_size(ref, image.shape)
            images.append(image)
            targets.append((np.nan_to_num(aff).astype(np.float32), valid))
        log.info("student targets: engine affinities of %d %s frame(s) from %s", len(refs), split, self.teacher_dir)
        return images, targets

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate"):
            if self.train_mode == "raw":
                refs = self.frames("raw")
                if not refs:
                    raise InputError(self.root / self.dataset, "the raw split holds no frames")
                images = [self.training_frames().load_image(r) for r in refs]
                for r, im in zip(refs, images):
                    self._check_size(r, im.shape)
                self._train = CropDataset(images, self.crop_size, self.samples_per_epoch)
            elif self.train_mode == "affinities":
                images, targets = self._teacher("raw")
                self._train = CropDataset(images, self.crop_size, self.samples_per_epoch, targets=targets)
            else:
                images, labels = self._budget()
                weights = None
                if self.pseudo.active:
                    more, more_labels = self._pseudo_labeled()
                    weights = crop_weights([images, more], [1.0 - self.pseudo.share, self.pseudo.share])
                    images, labels = images + more, labels + more_labels
                self._train = CropDataset(images, self.crop_size, self.samples_per_epoch, labels,
                                          augment=self.augment, weights=weights)
            val_refs = self.frames("val")
            if val_refs:
                frames = self.training_frames()
                images = [frames.load_image(r) for r in val_refs]
                for r, im in zip(val_refs, images):
                    self._check_size(r, im.shape)
                labels, targets = None, None
                if self.train_mode == "labeled" and all(r.gt_path is not None for r in val_refs):
                    labels = [frames.load_labels(r) for r in val_refs]
                if self.train_mode == "affinities":
                    images, targets = self._teacher("val")
                self._val = CropDataset(images, self.crop_size, self.val_samples, labels, fixed_seed=self.seed + 1,
                                        targets=targets)

    def _loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self._train is None:
            self.setup("fit")
        return self._loader(self._train, shuffle=False)

    def val_dataloader(self) -> DataLoader | list:
        if self._val is None:
            self.setup("validate")
        return [] if self._val is None else self._loader(self._val, shuffle=False)
