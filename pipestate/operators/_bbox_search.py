"""The window search of ``fn.random_bbox_crop``, drawn and scored a block of candidates at a time.

Each round of DALI's search draws one of the thresholds (or "no crop"), then ``num_attempts`` candidate
windows; a candidate is accepted when its overlap metric reaches the threshold and a box remains. Here the
rounds and candidates of a block are drawn at once from counter-based words (``rng.Stream``: sample ``s``'s
block ``b`` is a pure function of the operator's key, ``s``'s identity and ``b``), scored with numpy, and
walked in order as DALI's loop. The first block of every sample of a batch is drawn and scored in one pass
over the batch; the few samples that need more continue alone.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from pipestate.operators import _box_geometry as geo
from pipestate.rng import Stream

F32 = np.float32
# DALI searches forever when no window can satisfy the constraints; pipestate stops after this many attempts.
MAX_ATTEMPTS = 100_000
# Candidates per round at most: a larger num_attempts acts as this many (a new threshold is then drawn).
MAX_ROUND_ATTEMPTS = 1024
FIRST_BLOCK = 16  # candidates per sample in the first block (drawn and scored for the whole batch at once)


@dataclasses.dataclass(frozen=True)
class Config:
    """What decides the search (one batch): the operator's arguments, resolved."""

    ndim: int
    options: tuple[float | None, ...]  # thresholds; None: no crop
    attempts: int
    total: int  # total_num_attempts, -1: no limit
    scaling: tuple[np.float32, np.float32]
    pairs: tuple[tuple[int, int, np.float32, np.float32], ...]  # (d0, d1, min, max) aspect ratio per pair
    fixed: np.ndarray | None  # (ndim, ndim) fixed ratios, or None
    overlap: bool  # threshold_type "overlap" (else IoU)
    all_boxes: bool
    prune: float | None
    quiet: bool

    def rounds(self, block: int) -> int:
        """Rounds in block ``block``: ~16 candidates in the first, growing to ~256."""
        first = max(1, FIRST_BLOCK // self.attempts)
        return min(first * 4**block, max(first, 256 // self.attempts))

    def words(self, rounds: int, fixed_shape: bool) -> int:
        """Uniform values one sample needs for a block of ``rounds`` rounds."""
        per = self.ndim if fixed_shape else self.ndim * (3 if self.fixed is not None else 2)
        return rounds + rounds * self.attempts * per


def candidates(
    config: Config, u: np.ndarray, rounds: int, input_shape: np.ndarray | None, crop_shape: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """Draw a block for S samples from their uniform values ``u`` (S, words; float32, 24-bit, like DALI's
    float distributions).

    Args:
        input_shape, crop_shape: (S, ndim) int64 in W, H(, D) order, or None.

    Returns:
        (choices (S, rounds) option indices, relative windows (S, K, 2, ndim), output windows (S, K, 2, ndim),
        usable (S, K)) with K = rounds * attempts.
    """
    s, nd = u.shape[0], config.ndim
    k = rounds * config.attempts
    u = u.astype(np.float64)
    choices = np.minimum((u[:, :rounds] * len(config.options)).astype(np.int64), len(config.options) - 1)
    col = rounds
    if crop_shape is not None:
        size, crop = input_shape.astype(F32)[:, None], crop_shape.astype(F32)[:, None]
        room = np.maximum(input_shape - crop_shape, 0)[:, None]
        anchor = np.floor(u[:, col : col + k * nd].reshape(s, k, nd) * (room + 1)).astype(F32)
        out = np.stack([anchor, anchor + crop], axis=2)
        rel = np.stack([anchor / size, anchor / size + crop / size], axis=2)
        return choices, rel, out, np.ones((s, k), dtype=bool)
    low, high = config.scaling
    shape = (low + u[:, col : col + k * nd].reshape(s, k, nd) * (high - low)).astype(F32)
    col += k * nd
    scale = input_shape.astype(F32)[:, None] if input_shape is not None else None
    if scale is not None:  # aspect ratios in pixels
        shape = shape * scale
    if config.fixed is not None:
        shape = _fix_aspect_ratios(config.fixed, shape, u[:, col : col + k * nd].reshape(s, k, nd))
        col += k * nd
    usable = valid_aspect_ratio(config, shape)
    if scale is not None:
        shape = shape / scale
    anchor = (u[:, col : col + k * nd].reshape(s, k, nd) * (F32(1) - shape)).astype(F32)
    rel = np.stack([anchor, anchor + shape], axis=2)
    return choices, rel, rel, usable


def _fix_aspect_ratios(fixed: np.ndarray, shape: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """DALI's ``FixAspectRatios``: in a random order of the dimensions (``argsort(keys)``), set each later
    extent from an earlier one by the fixed ratios, then rescale to the previous largest extent."""
    order = np.argsort(keys, axis=-1)
    largest = shape.max(axis=-1)
    nd = shape.shape[-1]
    for i0 in range(nd):
        for i1 in range(i0 + 1, nd):
            d0, d1 = order[..., i0], order[..., i1]
            ratio = fixed[d1, d0]
            base = np.take_along_axis(shape, d0[..., None], axis=-1)[..., 0]
            current = np.take_along_axis(shape, d1[..., None], axis=-1)[..., 0]
            np.put_along_axis(shape, d1[..., None], np.where(ratio > 0, base * ratio, current)[..., None], axis=-1)
    return (largest[..., None] * shape / shape.max(axis=-1)[..., None]).astype(F32)


def valid_aspect_ratio(config: Config, shape: np.ndarray) -> np.ndarray:
    """Mask of the (..., ndim) extents whose pairwise ratios lie in ``aspect_ratio`` (a fixed ratio within
    float32 rounding)."""
    ok = np.ones(shape.shape[:-1], dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for d0, d1, low, high in config.pairs:
            ratio = shape[..., d0] / shape[..., d1]
            ok &= (np.abs(ratio - low) <= F32(1e-5) * low) if low == high else ((ratio >= low) & (ratio <= high))
    return ok


def metrics(config: Config, rel: np.ndarray, boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each window's overlap metric with its sample's boxes: (S, K) from windows (S, K, 2, ndim), boxes padded
    to (S, N, 2, ndim) with ``valid`` (S, N); 0 for a sample without boxes."""
    if not boxes.shape[1]:
        return np.zeros(rel.shape[:2], dtype=F32)
    crops, b = rel[:, :, None], boxes[:, None]
    values = geo.overlap(crops, b) if config.overlap else geo.iou(crops, b)
    mask = valid[:, None, :]
    if config.all_boxes:
        out = np.where(mask, values, np.inf).min(axis=2)
    else:
        out = np.where(mask, values, -np.inf).max(axis=2)
    return np.where(valid.any(axis=1)[:, None], out, 0).astype(F32)


def keep_masks(config: Config, rel: np.ndarray, boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(S, K, N) masks of the boxes each window keeps (centroid inside, or enough area inside)."""
    crops, b = rel[:, :, None], boxes[:, None]
    if config.prune is None:
        inside = None
        for d in range(config.ndim):
            center = (b[..., 0, d] + b[..., 1, d]) * F32(0.5)
            within = (center >= crops[..., 0, d]) & (center < crops[..., 1, d])
            inside = within if inside is None else inside & within
    else:
        inter = geo.intersection_volume(crops, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = (inter > 0) & (inter / geo.volume(b) >= F32(config.prune))
    return inside & valid[:, None, :]


def first_events(
    config: Config, choices: np.ndarray, usable: np.ndarray, metric: np.ndarray, kept: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How each sample's first block ends, without walking it: (kind, candidate) per sample, kind 1 when a
    candidate is accepted (the first valid one that keeps a box, before any no-crop round), 2 when a no-crop
    round comes first, 0 when the block decides nothing (the sample then walks on alone)."""
    s, k = metric.shape
    attempts = config.attempts
    none = np.zeros(s, dtype=np.int64)
    if config.total > 0 and config.total <= k:  # the attempt limit falls inside the block: walk it
        return none, none
    table = np.array([np.nan if o is None else o for o in config.options], dtype=np.float64)
    thresholds = table[choices]
    no_crop = np.isnan(thresholds)
    per_candidate = np.repeat(thresholds, attempts, axis=1)
    has_boxes = valid.any(axis=1)[:, None]
    accepted = usable & ~np.isnan(per_candidate) & ((metric >= per_candidate) | ~has_boxes)
    accepted &= kept.any(axis=2) | ~has_boxes
    first_accepted = np.where(accepted.any(axis=1), np.argmax(accepted, axis=1), k + 1).astype(np.float64)
    first_no_crop = np.where(no_crop.any(axis=1), np.argmax(no_crop, axis=1) * attempts - 0.5, k + 1)
    kind = np.where(np.minimum(first_accepted, first_no_crop) > k, 0, np.where(first_no_crop < first_accepted, 2, 1))
    return kind, np.argmax(accepted, axis=1)


def remap_all(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Padded boxes (S, N, 2, ndim) mapped into one window per sample (S, 2, ndim), clamped to [0, 1]."""
    lo, hi = windows[:, None, 0], windows[:, None, 1]
    out = np.empty(boxes.shape, dtype=F32)
    np.maximum(boxes[:, :, 0], lo, out=out[:, :, 0])
    np.minimum(boxes[:, :, 1], hi, out=out[:, :, 1])
    out -= lo[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out /= (hi - lo)[:, :, None]
    return np.clip(out, F32(0), F32(1), out=out)


def pad(boxes: list[np.ndarray], ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples' (n_i, 2, ndim) boxes as one (S, max n, 2, ndim) array and its validity mask."""
    n = max((len(b) for b in boxes), default=0)
    out = np.zeros((len(boxes), n, 2, ndim), dtype=F32)
    valid = np.zeros((len(boxes), n), dtype=bool)
    for i, b in enumerate(boxes):
        out[i, : len(b)] = b
        valid[i, : len(b)] = True
    return out, valid


class Search:
    """One sample's search (see the module documentation), continued from its first block."""

    def __init__(
        self, config: Config, boxes: np.ndarray, input_shape: np.ndarray | None, crop_shape: np.ndarray | None
    ) -> None:
        self.config, self.boxes = config, boxes
        self.input_shape, self.crop_shape = input_shape, crop_shape
        self.count, self.best = 0, F32(-1)
        self.window: tuple[np.ndarray, np.ndarray] | None = None  # the best (relative, output) window so far
        self.kept: np.ndarray | None = None  # its kept boxes, when known

    def keep(self, rel: np.ndarray) -> np.ndarray:
        """Indices of the boxes kept for the window ``rel`` (centroid inside, or enough area inside)."""
        threshold = self.config.prune
        if threshold is None:
            keep = geo.centroids_inside(self.boxes, rel)
        else:
            inter = geo.intersection_volume(rel[None], self.boxes)
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = (inter > 0) & (inter / geo.volume(self.boxes) >= F32(threshold))
        return np.flatnonzero(keep)

    def walk(self, choices, rel, out, usable, metric, limit: int) -> str | None:
        """Walk one block's rounds in order; return "done", "no_crop", or None to continue."""
        config = self.config
        attempts = config.attempts
        has_boxes = len(self.boxes) > 0
        for r, choice in enumerate(choices.tolist()):
            threshold = config.options[choice]
            if threshold is None:
                return "no_crop"
            for j in range(r * attempts, (r + 1) * attempts):
                if self.count >= limit:
                    return None
                self.count += 1
                if not usable[j]:
                    continue
                valid = bool(metric[j] >= threshold) or not has_boxes  # nothing to overlap: any window
                if metric[j] <= self.best and not valid:
                    continue
                self.best = metric[j]
                self.window, self.kept = (rel[j], out[j]), None
                if valid:
                    self.kept = self.keep(rel[j])
                    if len(self.kept) or not has_boxes:
                        return "done"
        return None

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(output window (2, ndim), kept box indices, the kept boxes mapped into the window)."""
        if self.window is None:  # no candidate had a valid aspect ratio: DALI's empty window
            nd = self.config.ndim
            return np.zeros((2, nd), dtype=F32), np.empty(0, dtype=np.int64), np.empty((0, 2, nd), F32)
        rel, out = self.window
        kept = self.keep(rel) if self.kept is None else self.kept
        return out, kept, geo.remap(self.boxes[kept], rel)

    def run(
        self, first: tuple[np.ndarray, ...], stream: Stream
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """Search from the first block (this sample's row of the batch's), drawing later blocks from
        ``stream``; return (output window (2, ndim), kept indices, remapped boxes), or None for no crop.

        Raises:
            ValueError: no window found within :data:`MAX_ATTEMPTS` without ``total_num_attempts``.
        """
        config = self.config
        limit = config.total if config.total > 0 else MAX_ATTEMPTS
        block, data = 0, first
        while True:
            state = self.walk(*data, limit=limit)
            if state == "no_crop":
                return None
            if state == "done":
                return self.result()
            if self.count >= limit:
                break
            block += 1
            rounds = config.rounds(block)
            u = stream.uniform(config.words(rounds, self.crop_shape is not None), np.float32, purpose=block)
            choices, rel, out, usable = candidates(
                config, u, rounds,
                None if self.input_shape is None else self.input_shape[None],
                None if self.crop_shape is None else self.crop_shape[None],
            )  # fmt: skip
            valid = np.ones((1, len(self.boxes)), dtype=bool)
            metric = metrics(config, rel, self.boxes[None], valid)
            data = (choices[0], rel[0], out[0], usable[0], metric[0])
        if config.total <= 0:
            raise ValueError(
                "fn.random_bbox_crop(): no crop window satisfies "
                f"thresholds={[o for o in config.options if o is not None]} "
                f"within {MAX_ATTEMPTS} attempts (DALI would search forever); allow_no_crop=True, lower thresholds or "
                "total_num_attempts= (use the best window found) end the search"
            )
        if not config.quiet and len(self.boxes):
            warnings.warn(
                f"fn.random_bbox_crop(): could not find a valid cropping window to satisfy the specified requirements "
                f"(attempted {self.count} times); using the best cropping window so far (best_metric={self.best:g})",
                RuntimeWarning,
                stacklevel=2,
            )
        return self.result()
