"""The IGM split engine (docs/method.md §3; paper sections 2.3-2.4 and appendix A).

A region R of a patch is split in two at the median row or column (axis chosen by a seeded hash),
then the boundary evolves for T iterations: the band N = {i in R : disk(i, d) meets M and R\\M}
is hidden, the patch is inpainted once from M\\N and once from (R\\M)\\N, the per-pixel errors on N
are smoothed (normalised Gaussian convolution over N), RIG = e~_A - e~_B, and each pixel of N joins
M where RIG < 0 (M predicts it better), else R\\M. The paper's eq. (11) prints "RIG > 0", which
would raise IGM_N (eq. 8); docs/method.md §3 explains. The two halves are split again until one comes out
empty (a leaf), or a region falls below ``min_region`` pixels, or ``max_depth`` is reached. Given
the patches' foreground, a region that the foreground says needs no split (too little foreground,
or one small object: ``region_min_fg``, ``one_object_px``) becomes a leaf without being split.

Regions carry heap ids (root 1, children 2r for M and 2r+1 for R\\M), so a leaf id encodes its
whole ancestry: the ancestor at depth k of leaf r (depth r.bit_length()-1) is r >> (depth - k).
The random axis of a region depends only on (patch seed, region id): batched and faithful runs
make the same choices, whatever the order in which regions are processed.

``mode="batched"`` advances every active region of every patch together, one forward pass per
iteration (both conditionals stacked into one batch); ``mode="faithful"`` runs one region at a
time for exactly T iterations, as the paper did.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from inpaintaff.igm.filters import hidden_band, smooth_on_band
from inpaintaff.igm.inpainters import Inpainter
from inpaintaff.utils.errors import InputError
from inpaintaff.utils.precision import float32_precision

END_REASONS = ("emptied", "min_size", "max_depth", "weak", "no_foreground", "one_object")
PRECISIONS = ("auto", "32", "tf32", "bf16", "16")
# engine.chunk=auto on a CPU: calls of 16 images were 1.4-1.65x faster per image than whole passes of up
# to 512 on crowded HeLa patches, 2 threads (benchmarks/full_frame.py --chunks): the net's
# activations stay in cache.
CPU_CHUNK = 16
# Engine settings that change only how the work is batched, never the leaves (tested).
BATCHING_KNOBS = ("max_regions", "chunk", "pad_chunks")
_M64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """Deterministic 63-bit hash of integers (splitmix64 chain); independent of process and order."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _M64)) & _M64
        h = (h + 0x9E3779B97F4A7C15) & _M64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
        h ^= h >> 31
    return h >> 1


def d_schedule(iterations: int, d0: int) -> list[int]:
    """Band radius per iteration: d0 for the first half, then linearly down to 1; d=1 on odd t."""
    half = iterations // 2
    out = []
    for t in range(iterations):
        if t % 2 == 1:
            d = 1
        elif t < half:
            d = d0
        else:
            frac = (t - half) / max(iterations - 1 - half, 1)
            d = round(d0 - (d0 - 1) * frac)
        out.append(max(1, int(d)))
    return out


@dataclass
class EngineConfig:
    """Settings of the split engine (see the module docstring)."""

    iterations: int = 20  # T
    d0: int = 8
    sigmas: Sequence[float] = (0.1, 1.0, 5.0, 10.0)
    error: str = "squared"  # or "absolute"
    min_region: int = 40
    max_depth: int = 3  # measured: depth 3 beats 8 on SEG with a third fewer images (benchmarks/engine_settings.py)
    mode: str = "batched"  # or "faithful"
    early_stop: bool = True  # batched mode: stop a region once its split stops changing
    patience: int = 1  # unchanged iterations before an early stop (1 and 2 gave the same SEG: engine_settings.py)
    max_regions: int = 256  # regions advanced together (2x as many images per forward pass)
    # RIG within +-tie_tol counts as a tie (-> R\M, as RIG = 0 does): predictions equal up to
    # float rounding must not decide a split.
    tie_tol: float = 1e-6
    # Optional evidence rule (docs/method.md §3), None = off (the paper): a finished split counts as
    # empty ("weak") when, on the one-pixel band along its final boundary,
    #   "random_split": mean |RIG| < stop_threshold x that of the initial (random) split;
    #   "contrast":     sum |RIG| / sum (e~_A + e~_B) < stop_threshold (scale-free, in [0, 1]).
    stop_rule: str | None = None
    stop_threshold: float = 0.5
    # Autocast of the inpainter: "32" (default: exact IEEE float32 on every device, so a GPU gives
    # the CPU's affinities; bf16 cost 0.05 SEG on validation windows), "tf32" (float32 with
    # TensorFloat-32 convolutions and products on CUDA: other splits than the CPU's), "auto" (bf16,
    # else float16, on CUDA; float32 on CPU), "bf16" or "16". The engine's own arithmetic is
    # float32 whatever this says.
    precision: str = "32"
    # Images per inpainter call within one pass (bounds memory; small chunks suit CPU caches).
    # None: the whole pass at once; "auto": CPU_CHUNK images on a CPU, the whole pass on a GPU.
    # Results depend on it only through float rounding.
    chunk: int | str | None = "auto"
    # Pad every inpainter call to exactly ``chunk`` images (copies of the last one, dropped after):
    # one input shape, which a torch.compile without dynamic shapes needs to compile only once.
    pad_chunks: bool = False
    # Regions the patch's foreground says need no split become leaves unsplit (0 = off, the paper):
    # fewer than ``region_min_fg`` foreground pixels (only background pairs, which the segmentation's
    # foreground masks, would be cut), or a foreground of one connected object of at most
    # ``one_object_px`` pixels (one nucleus, at the net's scale). Both need ``run(foreground=...)``.
    region_min_fg: int = 0
    one_object_px: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.d0 < 1:
            raise ValueError(f"engine needs iterations >= 1 and d0 >= 1, got {self.iterations}, {self.d0}")
        if self.error not in ("squared", "absolute"):
            raise ValueError(f"engine.error must be 'squared' or 'absolute', got {self.error!r}")
        if self.mode not in ("batched", "faithful"):
            raise ValueError(f"engine.mode must be 'batched' or 'faithful', got {self.mode!r}")
        if self.min_region < 2 or not 0 <= self.max_depth <= 60:
            raise ValueError("engine needs min_region >= 2 and 0 <= max_depth <= 60")
        if self.chunk is not None and self.chunk != "auto" and (isinstance(self.chunk, str) or int(self.chunk) < 1):
            raise ValueError(f"engine.chunk must be a number >= 1, 'auto' or null, got {self.chunk!r}")
        if self.pad_chunks and self.chunk in (None, "auto"):
            raise ValueError(f"engine.pad_chunks needs engine.chunk set to a number (the one batch size to pad to), "
                             f"got {self.chunk!r}")
        if self.region_min_fg < 0 or self.one_object_px < 0:
            raise ValueError(f"engine.region_min_fg and engine.one_object_px must be >= 0 (0 = off), got "
                             f"{self.region_min_fg}, {self.one_object_px}")
        if self.max_regions < 1 or self.patience < 1:
            raise ValueError("engine needs max_regions >= 1 and patience >= 1")
        if self.stop_rule not in (None, "random_split", "contrast"):
            raise ValueError(f"engine.stop_rule must be null, 'random_split' or 'contrast', got {self.stop_rule!r}")
        self.precision = str(self.precision)
        if self.precision not in PRECISIONS:
            raise ValueError(f"engine.precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.sigmas = tuple(float(s) for s in self.sigmas)

    def result_settings(self) -> dict:
        """The settings that decide the affinities (what a resumed run must share): all but the
        batching knobs ``max_regions`` and ``chunk``, which change only speed and memory."""
        out = {k: v for k, v in self.__dict__.items() if k not in BATCHING_KNOBS}
        out["sigmas"] = list(self.sigmas)
        return out

    @property
    def uses_foreground(self) -> bool:
        """Whether the engine reads the patches' foreground (``region_min_fg`` or ``one_object_px`` on)."""
        return self.region_min_fg > 0 or self.one_object_px > 0

    def chunk_size(self, device: torch.device) -> int | None:
        """Images per inpainter call on ``device`` (None: the whole pass)."""
        if self.chunk == "auto":
            return CPU_CHUNK if device.type == "cpu" else None
        return None if self.chunk is None else int(self.chunk)

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The dtype the inpainter runs in under autocast on ``device``, None for float32."""
        p = self.precision
        if p == "auto":
            if device.type != "cuda":
                return None
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"32": None, "tf32": None, "bf16": torch.bfloat16, "16": torch.float16}[p]


@dataclass
class SplitResult:
    """Leaves of each patch (heap ids, (P, h, w) int64) and what it cost."""

    leaf_ids: torch.Tensor
    # Per patch (P,) int64: splits (regions optimised), steps (region iterations), leaves, and
    # how each leaf ended: emptied / min_size / max_depth / weak.
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    forward_passes: int = 0  # inpainter calls
    conditionals: int = 0  # images inpainted (two per region iteration)


@dataclass
class _Pool:
    """Active regions, stacked: masks (K, 1, h, w) bool, per-region vectors (K,)."""

    R: torch.Tensor
    M: torch.Tensor
    patch: torch.Tensor
    rid: torch.Tensor
    t: torch.Tensor
    stable: torch.Tensor
    ev0: torch.Tensor
    ev: torch.Tensor

    def __len__(self) -> int:
        return self.R.shape[0]

    def select(self, keep: torch.Tensor) -> _Pool:
        return _Pool(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    @staticmethod
    def cat(a: _Pool | None, b: _Pool | None) -> _Pool | None:
        if a is None or len(a) == 0:
            return b
        if b is None or len(b) == 0:
            return a
        return _Pool(*(torch.cat([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__))


@dataclass
class _Run:
    """State of one ``SplitEngine.run``: the patches, leaves so far, counters, regions waiting."""

    images: torch.Tensor  # (P, 1, h, w) float32
    seeds: list[int]
    leaf: torch.Tensor  # (P, h, w) int64 heap ids, filled as leaves are found
    stats: dict[str, torch.Tensor]
    pending: deque = field(default_factory=deque)  # (patch, region id, mask) to split
    passes: int = 0
    conditionals: int = 0
    foreground: np.ndarray | None = None  # (P, h, w) bool on the host, for the region rules

    @staticmethod
    def new(images: torch.Tensor, seeds: list[int], foreground: np.ndarray | None = None) -> _Run:
        p_count, _, h, w = images.shape
        leaf = torch.zeros((p_count, h, w), dtype=torch.long, device=images.device)
        stats = {k: torch.zeros(p_count, dtype=torch.long) for k in ("splits", "steps", "leaves", *END_REASONS)}
        return _Run(images, seeds, leaf, stats, foreground=foreground)

    def leaf_out(self, p: int, rid: int, mask: torch.Tensor, reason: str | None) -> None:
        self.leaf[p][mask[0]] = rid
        self.stats["leaves"][p] += 1
        if reason:
            self.stats[reason][p] += 1


class SplitEngine:
    """Hierarchical IGM splitting of image patches with an inpainter."""

    def __init__(self, inpainter: Inpainter, config: EngineConfig | None = None, **overrides):
        self.inpainter = inpainter
        cfg = config or EngineConfig()
        if overrides:
            cfg = EngineConfig(**{**cfg.__dict__, **overrides})
        self.cfg = cfg
        self.schedule = d_schedule(cfg.iterations, cfg.d0)

    # -- one iteration for all active regions --------------------------------------------------
    def band(self, R: torch.Tensor, M: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """N(M, d) within R: pixels whose disk of radius d meets both M and R\\M."""
        N = torch.zeros_like(R)
        Mb = R & ~M
        for dv in torch.unique(d).tolist():
            idx = (d == dv).nonzero().squeeze(1)
            N[idx] = hidden_band(M[idx], Mb[idx], dv, R[idx])
        return N

    def _inpaint(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        known = known.to(x.dtype)
        inp = x * known
        if x.is_cuda:
            inp, known = (t.contiguous(memory_format=torch.channels_last) for t in (inp, known))
        dtype = self.cfg.autocast_dtype(x.device)
        amp = torch.autocast(x.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        step = self.cfg.chunk_size(x.device) or inp.shape[0]
        preds = []
        with amp, float32_precision(tf32=self.cfg.precision == "tf32"):
            for i in range(0, inp.shape[0], step):
                a, k = inp[i : i + step], known[i : i + step]
                n = a.shape[0]
                if self.cfg.pad_chunks and n < step:  # each image is inpainted on its own: copies change nothing
                    a, k = (torch.cat([t, t[-1:].expand(step - n, *t.shape[1:])]) for t in (a, k))
                preds.append(self.inpainter(a, k)[:n])
        return torch.cat(preds).float().contiguous()

    def step(self, images: torch.Tensor, pool: _Pool) -> tuple[torch.Tensor, ...]:
        """One iteration for every region of the pool: returns (new M, RIG, N, ẽ_A + ẽ_B or None).

        ẽ_A + ẽ_B (for the "contrast" stop rule) is computed only when that rule is on.
        """
        d = torch.tensor(self.schedule, device=pool.t.device)[pool.t]
        R, M = pool.R, pool.M
        N = self.band(R, M, d)
        x = images[pool.patch]
        k = len(pool)
        # Conditional A knows M \ N, conditional B knows (R \ M) \ N: one stacked pass.
        known = torch.cat([M & ~N, R & ~M & ~N])
        diff = self._inpaint(torch.cat([x, x]), known) - torch.cat([x, x])
        err = diff * diff if self.cfg.error == "squared" else diff.abs()
        e_A, e_B = err[:k], err[k:]
        # The smoothing over N is linear for a fixed band, so ẽ_A - ẽ_B = smooth(e_A - e_B):
        # one smoothing instead of two.
        rig = smooth_on_band(e_A - e_B, N, self.cfg.sigmas)
        e_sum = smooth_on_band(e_A + e_B, N, self.cfg.sigmas) if self.cfg.stop_rule == "contrast" else None
        new_M = (M & ~N) | (N & (rig < -self.cfg.tie_tol))
        return new_M, rig, N, e_sum

    # -- region bookkeeping -----------------------------------------------------------------
    def _initial_split(self, R: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
        """M⁰ for regions R (K, 1, h, w): the part of R before the cut nearest to half of R.

        ``axes`` (K,) 0 = cut between rows, 1 = between columns; an axis along which R cannot be
        cut (a single row or column) gives way to the other. Returns M (K, 1, h, w); regions that
        cannot be cut at all get an empty M.
        """
        Rf = R[:, 0].float()
        n = Rf.flatten(1).sum(1)
        cuts = []
        for prof in (Rf.sum(2), Rf.sum(1)):  # per row, per column
            cs = prof.cumsum(1)[:, :-1]  # pixels before a cut after index c
            cost = (cs - n[:, None] / 2).abs()
            cost = torch.where((cs > 0) & (cs < n[:, None]), cost, torch.inf)
            best, c = cost.min(1)
            cuts.append((best, c))
        ok0, ok1 = torch.isfinite(cuts[0][0]), torch.isfinite(cuts[1][0])
        use1 = ((axes == 1) & ok1) | ((axes == 0) & ~ok0 & ok1)
        h, w = R.shape[-2:]
        rows = torch.arange(h, device=R.device)[None, :, None]
        cols = torch.arange(w, device=R.device)[None, None, :]
        m_rows = rows <= cuts[0][1][:, None, None]
        m_cols = cols <= cuts[1][1][:, None, None]
        M = torch.where(use1[:, None, None], m_cols, m_rows) & R[:, 0]
        M &= (ok0 | ok1)[:, None, None]
        return M[:, None]

    def _start(self, regions: list[tuple[int, int, torch.Tensor]], seeds: list[int]) -> _Pool:
        R = torch.stack([r[2] for r in regions])
        patch = torch.tensor([r[0] for r in regions], device=R.device)
        rid = torch.tensor([r[1] for r in regions], device=R.device)
        axes = torch.tensor([mix_seed(seeds[p], i) & 1 for p, i, _ in regions], device=R.device)
        M = self._initial_split(R, axes)
        zeros = torch.zeros(len(regions), dtype=torch.long, device=R.device)
        fz = torch.zeros(len(regions), device=R.device)
        return _Pool(R, M, patch, rid, zeros, zeros.clone(), fz, fz.clone())

    def _evidence(self, rig: torch.Tensor, esum: torch.Tensor, pool: _Pool) -> torch.Tensor:
        """Evidence for the current boundary on its one-pixel band (see ``stop_rule``)."""
        one = torch.ones(len(pool), dtype=torch.long, device=rig.device)
        b1 = self.band(pool.R, pool.M, one)
        num = (rig.abs() * b1).flatten(1).sum(1)
        if self.cfg.stop_rule == "contrast":
            return num / (esum * b1).flatten(1).sum(1).clamp_min(1e-12)
        return num / b1.flatten(1).sum(1).clamp_min(1)

    # -- driver ---------------------------------------------------------------------------
    def run(self, images: torch.Tensor, seeds: Sequence[int] | torch.Tensor,
            foreground: torch.Tensor | np.ndarray | None = None) -> SplitResult:
        """Split every patch of ``images`` (P, 1, h, w) into leaves; ``seeds`` (P,) pick the axes.

        ``foreground`` (P, 1, h, w) or (P, h, w), bool: the patches' foreground, which the region rules
        (``region_min_fg``, ``one_object_px``) read; needed when they are on, ignored otherwise.
        """
        if images.ndim != 4 or images.shape[1] != 1:
            raise InputError(None, f"engine expects patches of shape (P, 1, h, w), got {tuple(images.shape)}")
        fg = self._foreground(foreground, images.shape)
        if not torch.isfinite(images).all():
            raise InputError(None, "patch contains NaN or infinite values")
        seeds = [int(s) for s in (seeds.tolist() if torch.is_tensor(seeds) else seeds)]
        if len(seeds) != images.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for {images.shape[0]} patches")
        # The engine's own arithmetic stays exact float32 even under a mixed-precision trainer or
        # a process that allows TF32; only the inpainter follows `precision` (see _inpaint).
        with torch.inference_mode(), torch.autocast(images.device.type, enabled=False), float32_precision(tf32=False):
            run = _Run.new(images.float(), seeds, fg)
            p_count, _, h, w = images.shape
            full = torch.ones((1, h, w), dtype=torch.bool, device=images.device)
            if self.cfg.mode == "faithful":
                for p in range(p_count):
                    self._drive(run, [(p, 1, full)], capacity=1, early_stop=False, lifo=True)
            else:
                roots = [(p, 1, full) for p in range(p_count)]
                self._drive(run, roots, self.cfg.max_regions, self.cfg.early_stop, lifo=False)
            return SplitResult(run.leaf, run.stats, run.passes, run.conditionals)

    def _foreground(self, foreground: torch.Tensor | np.ndarray | None, shape: torch.Size) -> np.ndarray | None:
        """The patches' foreground as a host (P, h, w) bool array when the region rules need it."""
        if not self.cfg.uses_foreground:
            return None
        if foreground is None:
            raise ValueError("engine.region_min_fg / engine.one_object_px need the patches' foreground "
                             "(SplitEngine.run(foreground=...); in task=inpaintaff: set task.foreground.source)")
        fg = foreground.detach().cpu().numpy() if torch.is_tensor(foreground) else np.asarray(foreground)
        fg = fg.reshape(fg.shape[0], *fg.shape[-2:]) if fg.ndim == 4 and fg.shape[1] == 1 else fg
        if fg.shape != (shape[0], *shape[-2:]):
            raise InputError(None, f"engine foreground of shape {fg.shape} does not match the patches {tuple(shape)}")
        return fg.astype(bool, copy=False)

    def _needs_no_split(self, run: _Run, p: int, mask: torch.Tensor) -> str | None:
        """Why the foreground makes this region a leaf (``no_foreground``/``one_object``), or None."""
        if run.foreground is None:
            return None
        fg = run.foreground[p] & mask[0].cpu().numpy()
        n = int(fg.sum())
        if n < self.cfg.region_min_fg:
            return "no_foreground"
        if n <= self.cfg.one_object_px and ndimage.label(fg)[1] == 1:
            return "one_object"
        return None

    def _admit(self, run: _Run, p: int, rid: int, mask: torch.Tensor) -> None:
        """Queue a region for splitting, or make it a leaf if a safeguard or the foreground stops it."""
        depth = rid.bit_length() - 1
        if int(mask.sum()) < self.cfg.min_region:
            run.leaf_out(p, rid, mask, "min_size")
        elif depth >= self.cfg.max_depth:
            run.leaf_out(p, rid, mask, "max_depth")
        elif reason := self._needs_no_split(run, p, mask):
            run.leaf_out(p, rid, mask, reason)
        else:
            run.pending.append((p, rid, mask))

    def _drive(self, run: _Run, roots: list[tuple[int, int, torch.Tensor]], capacity: int, early_stop: bool,
               lifo: bool) -> None:
        """Advance regions, at most ``capacity`` at a time, until every one has become a leaf."""
        cfg, pending = self.cfg, run.pending
        for p, rid, mask in roots:
            self._admit(run, p, rid, mask)
        pool: _Pool | None = None
        while pending or (pool is not None and len(pool)):
            free = capacity - (0 if pool is None else len(pool))
            if free > 0 and pending:
                new = [pending.pop() if lifo else pending.popleft() for _ in range(min(free, len(pending)))]
                started = self._start(new, run.seeds)
                cut = started.M.flatten(1).any(1)
                for i in (~cut).nonzero().squeeze(1).tolist():  # cannot be cut: too thin
                    run.leaf_out(int(started.patch[i]), int(started.rid[i]), started.R[i], "min_size")
                pool = _Pool.cat(pool, started.select(cut))
            if pool is None or len(pool) == 0:
                continue
            new_M, rig, _, e_sum = self.step(run.images, pool)
            run.passes += 1
            run.conditionals += 2 * len(pool)
            run.stats["steps"].index_add_(0, pool.patch.cpu(), torch.ones(len(pool), dtype=torch.long))
            if cfg.stop_rule is not None:
                ev = self._evidence(rig, e_sum, pool)
                pool.ev0 = torch.where(pool.t == 0, ev, pool.ev0)
                pool.ev = ev
            changed = (new_M != pool.M).flatten(1).any(1)
            pool.stable = torch.where(changed, 0, pool.stable + 1)
            pool.M = new_M
            pool.t = pool.t + 1
            done = pool.t >= cfg.iterations
            if early_stop:
                done |= pool.stable >= cfg.patience
            for i in done.nonzero().squeeze(1).tolist():
                self._finish(run, pool, i)
            pool = pool.select(~done)

    def _weak(self, ev: float, ev0: float) -> bool:
        rule, thr = self.cfg.stop_rule, self.cfg.stop_threshold
        if rule == "contrast":
            return ev < thr
        return rule == "random_split" and ev < thr * ev0

    def _finish(self, run: _Run, pool: _Pool, i: int) -> None:
        p, rid = int(pool.patch[i]), int(pool.rid[i])
        R, M = pool.R[i], pool.M[i]
        Mb = R & ~M
        run.stats["splits"][p] += 1
        if not M.any() or not Mb.any():
            run.leaf_out(p, rid, R, "emptied")
        elif self._weak(float(pool.ev[i]), float(pool.ev0[i])):
            run.leaf_out(p, rid, R, "weak")
        else:
            self._admit(run, p, 2 * rid, M)
            self._admit(run, p, 2 * rid + 1, Mb)


def ancestors_at(leaf_ids: torch.Tensor, depth: int) -> torch.Tensor:
    """The partition after ``depth`` rounds of splitting (region ids at that level)."""
    d = torch.zeros_like(leaf_ids)
    for k in range(1, 63):
        d += (leaf_ids >> k) > 0
    shift = (d - depth).clamp_min(0)
    return leaf_ids >> shift
