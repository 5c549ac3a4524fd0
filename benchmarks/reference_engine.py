"""The split engine as it was before the speed work (commit 6307b29), frozen for comparison.

Kept verbatim (its filters inlined) so that tests can show the current engine gives the same
leaves for the same seeds, and ``benchmarks/full_frame.py`` can time both side by side in one
run. Do not edit it to follow changes of the engine: that would defeat its purpose.
"""
from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F

from inpaintaff.igm.inpainters import Inpainter
from inpaintaff.utils.errors import InputError


@lru_cache(maxsize=64)
def _gaussian_1d(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


@lru_cache(maxsize=128)
def _blur_matrix(sigma: float, n: int, truncate: float, device: str) -> torch.Tensor:
    """(n, n) matrix applying the truncated 1D Gaussian with zero padding along one axis."""
    radius = max(1, min(math.ceil(truncate * sigma), n - 1))
    k = _gaussian_1d(sigma, radius)
    idx = torch.arange(n)
    diff = idx[None, :] - idx[:, None]  # column j contributes to row i with weight k[j - i]
    inside = diff.abs() <= radius
    m = torch.where(inside, k[(diff + radius).clamp(0, 2 * radius)], torch.zeros(()))
    return m.to(device)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Blur each channel of ``x`` (B, C, H, W) with a normalised Gaussian, zero padding outside.

    The kernel is truncated at ``ceil(truncate * sigma)`` pixels (and at the image size). It is
    applied as two small matrix products (rows, then columns): the same result as a separable
    zero-padded convolution, and much faster than single-channel conv2d on CPU and GPU.
    """
    h, w = x.shape[-2:]
    dev = str(x.device)
    gh = _blur_matrix(float(sigma), h, truncate, dev).to(x.dtype)
    gw = _blur_matrix(float(sigma), w, truncate, dev).to(x.dtype)
    return gh @ x @ gw.T


def gaussian_blur_multi(x: torch.Tensor, sigmas: tuple[float, ...], truncate: float = 4.0) -> torch.Tensor:
    """``gaussian_blur`` for several sigmas in one batched product: (S, *x.shape)."""
    h, w = x.shape[-2:]
    dev = str(x.device)
    gh = torch.stack([_blur_matrix(float(s), h, truncate, dev) for s in sigmas]).to(x.dtype)
    gw = torch.stack([_blur_matrix(float(s), w, truncate, dev) for s in sigmas]).to(x.dtype)
    extra = (1,) * (x.ndim - 2)
    gh = gh.view(len(sigmas), *extra, h, h)
    gw = gw.view(len(sigmas), *extra, w, w)
    return gh @ x.unsqueeze(0) @ gw.transpose(-1, -2)


@lru_cache(maxsize=64)
def _disk(radius: int) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).float()


def dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``mask`` (B, 1, H, W) bool by the disk {|v| <= radius}."""
    if radius <= 0:
        return mask
    k = _disk(int(radius)).to(mask.device)[None, None]
    hit = F.conv2d(mask.float(), k, padding=int(radius))
    return hit > 0.5
END_REASONS = ("emptied", "min_size", "max_depth", "weak")
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
    max_depth: int = 8
    mode: str = "batched"  # or "faithful"
    early_stop: bool = True  # batched mode: stop a region once its split stops changing
    patience: int = 2  # unchanged iterations before an early stop (one d=1 and one wider step)
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
    amp: bool = True  # autocast the inpainter on CUDA
    # Images per inpainter call within one pass (bounds memory; small chunks suit CPU caches).
    # None: the whole pass at once. Results depend on it only through float rounding.
    chunk: int | None = None

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.d0 < 1:
            raise ValueError(f"engine needs iterations >= 1 and d0 >= 1, got {self.iterations}, {self.d0}")
        if self.error not in ("squared", "absolute"):
            raise ValueError(f"engine.error must be 'squared' or 'absolute', got {self.error!r}")
        if self.mode not in ("batched", "faithful"):
            raise ValueError(f"engine.mode must be 'batched' or 'faithful', got {self.mode!r}")
        if self.min_region < 2 or not 0 <= self.max_depth <= 60:
            raise ValueError("engine needs min_region >= 2 and 0 <= max_depth <= 60")
        if self.max_regions < 1 or self.patience < 1:
            raise ValueError("engine needs max_regions >= 1 and patience >= 1")
        if self.stop_rule not in (None, "random_split", "contrast"):
            raise ValueError(f"engine.stop_rule must be null, 'random_split' or 'contrast', got {self.stop_rule!r}")
        self.sigmas = tuple(float(s) for s in self.sigmas)


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


def igm_n(rig: torch.Tensor, M: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
    """IGM_N (paper eq. 8) per region: sum of RIG over M∩N minus sum over (not M)∩N."""
    sign = torch.where(M, 1.0, -1.0)
    return (rig * sign * N).flatten(1).sum(1)


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
            N[idx] = R[idx] & dilate_disk(M[idx], dv) & dilate_disk(Mb[idx], dv)
        return N

    def _inpaint(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        known = known.to(x.dtype)
        inp = x * known
        amp: contextlib.AbstractContextManager = contextlib.nullcontext()
        if x.is_cuda:
            inp, known = (t.contiguous(memory_format=torch.channels_last) for t in (inp, known))
            if self.cfg.amp:
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                amp = torch.autocast("cuda", dtype=dtype)
        step = self.cfg.chunk or inp.shape[0]
        with amp:
            preds = [self.inpainter(inp[i : i + step], known[i : i + step]) for i in range(0, inp.shape[0], step)]
        return torch.cat(preds).float().contiguous()

    def step(self, images: torch.Tensor, pool: _Pool) -> tuple[torch.Tensor, ...]:
        """One iteration for every region of the pool: returns (new M, RIG, N, e~_A + e~_B)."""
        d = torch.tensor(self.schedule, device=pool.t.device)[pool.t]
        R, M = pool.R, pool.M
        N = self.band(R, M, d)
        x = images[pool.patch]
        known = torch.cat([M & ~N, R & ~M & ~N])
        pred = self._inpaint(torch.cat([x, x]), known)
        diff = pred - torch.cat([x, x])
        e = diff * diff if self.cfg.error == "squared" else diff.abs()
        Nf = N.float()
        e = e * torch.cat([Nf, Nf])
        k = len(pool)
        # Normalised convolution over N: sum_s G_s*(e N) / G_s*N, all sigmas in one product.
        blurred = gaussian_blur_multi(torch.cat([e, Nf]), self.cfg.sigmas)
        num, den = blurred[:, : 2 * k], blurred[:, 2 * k :].repeat(1, 2, 1, 1, 1)
        smooth = e + torch.where(den > 1e-12, num / den.clamp_min(1e-12), 0.0).sum(0)
        smooth = smooth * torch.cat([Nf, Nf])
        rig = smooth[:k] - smooth[k:]
        new_M = (M & ~N) | (N & (rig < -self.cfg.tie_tol))
        return new_M, rig, N, smooth[:k] + smooth[k:]

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
    def run(self, images: torch.Tensor, seeds: Sequence[int] | torch.Tensor) -> SplitResult:
        """Split every patch of ``images`` (P, 1, h, w) into leaves; ``seeds`` (P,) pick the axes."""
        if images.ndim != 4 or images.shape[1] != 1:
            raise InputError(None, f"engine expects patches of shape (P, 1, h, w), got {tuple(images.shape)}")
        if not torch.isfinite(images).all():
            raise InputError(None, "patch contains NaN or infinite values")
        seeds = [int(s) for s in (seeds.tolist() if torch.is_tensor(seeds) else seeds)]
        if len(seeds) != images.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for {images.shape[0]} patches")
        # The engine's own arithmetic stays float32 even under a mixed-precision trainer; only
        # the inpainter runs autocast (see _inpaint).
        with torch.inference_mode(), torch.autocast(images.device.type, enabled=False):
            images = images.float()
            p_count, _, h, w = images.shape
            dev = images.device
            self._leaf = torch.zeros((p_count, h, w), dtype=torch.long, device=dev)
            self._stats = {k: torch.zeros(p_count, dtype=torch.long) for k in
                           ("splits", "steps", "leaves", *END_REASONS)}
            self._passes = self._conds = 0
            full = torch.ones((1, h, w), dtype=torch.bool, device=dev)
            if self.cfg.mode == "faithful":
                for p in range(p_count):
                    self._drive(images, seeds, deque([(p, 1, full)]), capacity=1, early_stop=False, lifo=True)
            else:
                roots = deque((p, 1, full) for p in range(p_count))
                self._drive(images, seeds, roots, self.cfg.max_regions, self.cfg.early_stop, lifo=False)
            return SplitResult(self._leaf, self._stats, self._passes, self._conds)

    def _leaf_out(self, p: int, rid: int, mask: torch.Tensor, reason: str | None) -> None:
        self._leaf[p][mask[0]] = rid
        self._stats["leaves"][p] += 1
        if reason:
            self._stats[reason][p] += 1

    def _admit(self, p: int, rid: int, mask: torch.Tensor, pending: deque) -> None:
        """Queue a region for splitting, or make it a leaf if a safeguard stops it."""
        depth = rid.bit_length() - 1
        if int(mask.sum()) < self.cfg.min_region:
            self._leaf_out(p, rid, mask, "min_size")
        elif depth >= self.cfg.max_depth:
            self._leaf_out(p, rid, mask, "max_depth")
        else:
            pending.append((p, rid, mask))

    def _drive(self, images, seeds, pending: deque, capacity: int, early_stop: bool, lifo: bool) -> None:
        cfg = self.cfg
        roots = list(pending)
        pending.clear()
        for p, rid, mask in roots:
            self._admit(p, rid, mask, pending)
        pool: _Pool | None = None
        while pending or (pool is not None and len(pool)):
            free = capacity - (0 if pool is None else len(pool))
            if free > 0 and pending:
                new = [pending.pop() if lifo else pending.popleft() for _ in range(min(free, len(pending)))]
                started = self._start(new, seeds)
                cut = started.M.flatten(1).any(1)
                for i in (~cut).nonzero().squeeze(1).tolist():  # cannot be cut: too thin
                    self._leaf_out(int(started.patch[i]), int(started.rid[i]), started.R[i], "min_size")
                pool = _Pool.cat(pool, started.select(cut))
            if pool is None or len(pool) == 0:
                continue
            new_M, rig, _, esum = self.step(images, pool)
            self._passes += 1
            self._conds += 2 * len(pool)
            self._stats["steps"].index_add_(0, pool.patch.cpu(), torch.ones(len(pool), dtype=torch.long))
            if cfg.stop_rule is not None:
                ev = self._evidence(rig, esum, pool)
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
                self._finish(pool, i, pending)
            pool = pool.select(~done)

    def _weak(self, ev: float, ev0: float) -> bool:
        rule, thr = self.cfg.stop_rule, self.cfg.stop_threshold
        if rule == "contrast":
            return ev < thr
        return rule == "random_split" and ev < thr * ev0

    def _finish(self, pool: _Pool, i: int, pending: deque) -> None:
        p, rid = int(pool.patch[i]), int(pool.rid[i])
        R, M = pool.R[i], pool.M[i]
        Mb = R & ~M
        self._stats["splits"][p] += 1
        if not M.any() or not Mb.any():
            self._leaf_out(p, rid, R, "emptied")
        elif self._weak(float(pool.ev[i]), float(pool.ev0[i])):
            self._leaf_out(p, rid, R, "weak")
        else:
            self._admit(p, 2 * rid, M, pending)
            self._admit(p, 2 * rid + 1, Mb, pending)
