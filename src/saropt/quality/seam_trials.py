"""Measure the seamline filter on real imagery: inject mosaicking-like steps into a registered scene and score.

No real scene here comes with its mosaicking seamlines marked, so the filter's detection rate cannot be counted
on real seams. What can be measured on real imagery is the next best thing: the false alarms on the scene as it
is (its real roads, coasts, field and land-use boundaries), and the detection of a seam added to its optical
image (:func:`add_seam`: a constant brightness or colour offset on one side of a straight line through the whole
scene, the signature of two acquisitions joined). The real texture on both sides is what makes a seam hard to
see, and it is all there. :func:`seam_trials` does both for one scene, scoring patches as a build does (the
whole scene is the seamline context); ``benchmarks/seamline_real.py`` runs it on every real scene available, and
``saropt calibrate`` (:mod:`saropt.dataset.calibrate`) on a build's own scenes.

Convention:
    Arrays share the SAR scene's pixel grid (x = column, y = row, 0-based, pixel centres at integers). A line's
    angle is in degrees counter-clockwise from the +x axis as seen on screen (rows down), like
    ``seamline_angle``; its direction is ``(cos a, -sin a)`` and the offset goes to the side its normal
    ``(sin a, cos a)`` points to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from saropt.errors import InputError


def add_seam(
    opt: np.ndarray,
    point: tuple[float, float],
    angle_deg: float,
    offset: float,
    channel: int | None = None,
) -> np.ndarray:
    """A copy of an 8-bit optical image with a straight mosaicking-like step added.

    Args:
        opt: ``(H, W)`` or ``(H, W, C)`` uint8 optical image.
        point: ``(x, y)`` a point of the line.
        angle_deg: direction of the line (see the module's convention).
        offset: grey levels added on one side (negative darkens); values are clipped to 0-255, as a brighter or
            darker acquisition saturates.
        channel: add to this channel only (a colour seam); ``None`` adds to every channel.

    Returns:
        The new uint8 image.

    Raises:
        InputError: when ``opt`` is not uint8 or ``channel`` does not exist.
    """
    if opt.dtype != np.uint8:
        raise InputError(f"add_seam needs a uint8 optical image, got {opt.dtype}")
    if channel is not None and (opt.ndim != 3 or not 0 <= channel < opt.shape[2]):
        raise InputError(f"channel {channel} does not exist in an optical image of shape {opt.shape}")
    h, w = opt.shape[:2]
    t = np.deg2rad(angle_deg)
    x0, y0 = point
    side = (np.arange(w)[None, :] - x0) * np.sin(t) + (np.arange(h)[:, None] - y0) * np.cos(t) > 0
    out = opt.astype(np.int16)
    if channel is None:
        out[side] += int(round(offset))
    else:
        out[..., channel][side] += int(round(offset))
    return np.clip(out, 0, 255).astype(np.uint8)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count one half): the ROC curve's area, by
    :func:`saropt.matching.metrics.roc_auc` (NumPy only); NaN scores are left out, NaN when a side is empty."""
    from saropt.matching.metrics import roc_auc as auc

    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    labels = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    return auc(np.concatenate([pos, neg]), labels)


@dataclass
class SeamTrials:
    """Seamline scores of one or more scenes without and with injected seams.

    Attributes:
        clean: scores of every patch of the scenes as they are (NaN: too little valid data to judge).
        seam: per offset magnitude, the scores of the patches an injected seam crosses near their centre.
        clean_xy: ``(N, 2)`` top-left pixel ``(x, y)`` of each clean patch in its scene.
        clean_angle: direction of each clean patch's strongest line (degrees, NaN when its score is 0).
    """

    clean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seam: dict[float, np.ndarray] = field(default_factory=dict)
    clean_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    clean_angle: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def false_alarm(self, threshold: float) -> float:
        """Share of the clean patches scoring above ``threshold`` (flagged by ``seamline_max = threshold``)."""
        c = self.clean[np.isfinite(self.clean)]
        return float(np.mean(c > threshold)) if c.size else float("nan")

    def detection(self, offset: float, threshold: float) -> float:
        """Share of the patches crossed by a seam of ``offset`` grey levels scoring above ``threshold``."""
        s = self.seam.get(abs(float(offset)), np.zeros(0))
        s = s[np.isfinite(s)]
        return float(np.mean(s > threshold)) if s.size else float("nan")

    def auc(self, offset: float) -> float:
        """ROC area of seam patches (``offset``) against clean ones."""
        return roc_auc(self.seam.get(abs(float(offset)), np.zeros(0)), self.clean)

    def extend(self, other: SeamTrials) -> None:
        """Pool another scene's trials into these."""
        self.clean = np.concatenate([self.clean, other.clean])
        self.clean_xy = np.concatenate([self.clean_xy, other.clean_xy])
        self.clean_angle = np.concatenate([self.clean_angle, other.clean_angle])
        for k, v in other.seam.items():
            self.seam[k] = np.concatenate([self.seam.get(k, np.zeros(0)), v])


def seam_trials(
    sar: np.ndarray,
    opt: np.ndarray,
    valid: np.ndarray | None,
    *,
    patch: int = 256,
    stride: int | None = None,
    offsets: Sequence[float] = (40.0,),
    trials: int = 3,
    seed: int = 0,
    context: bool = True,
    min_valid: float = 0.9,
) -> SeamTrials:
    """Score a registered scene's patches as they are and with ``trials`` random seams of each offset.

    Each trial draws a line through the middle 40% of the scene (uniform angle), a sign, and, for RGB optical
    images, whether the step is a brightness step (every channel) or a colour step (one channel, chosen at
    random), each with probability 1/2; every offset is tried on the same lines. A patch counts as crossed when
    the line passes within ``patch / 8`` of its centre (the detector does not look within 64 px of a 256 px
    patch's border).

    Args:
        sar: ``(H, W)`` uint8 SAR scene (after the build's 8-bit mapping).
        opt: ``(H, W)`` or ``(H, W, 3)`` uint8 optical registered onto the SAR grid.
        valid: ``(H, W)`` bool validity of both; ``None`` = all valid.
        patch: patch side in pixels.
        stride: patch stride (default ``patch // 4``).
        offsets: seam magnitudes in grey levels (the sign is drawn per trial).
        trials: seams per offset.
        seed: random seed of the lines.
        context: judge patches with the whole scene as seamline context, as a build does; ``False`` judges
            each patch alone.
        min_valid: patches with a smaller valid fraction are skipped.

    Returns:
        The :class:`SeamTrials`.

    Raises:
        InputError: for a scene smaller than one patch or arrays of different sizes.
    """
    from saropt.io.windows import Window
    from saropt.quality.prep import prepare_pair
    from saropt.quality.seamline import detector_block_px, seam_context, seamline_score
    from saropt.tiling.grid import patch_grid

    h, w = sar.shape[:2]
    if opt.shape[:2] != (h, w) or (valid is not None and valid.shape != (h, w)):
        raise InputError(f"SAR {sar.shape}, optical {opt.shape} and validity must cover the same grid")
    if h < patch or w < patch:
        raise InputError(f"the scene ({w}x{h}) is smaller than one {patch} px patch")
    stride = stride or patch // 4
    mask = np.ones((h, w), bool) if valid is None else valid
    grid = [
        (win.col_off, win.row_off)
        for win in patch_grid(Window(0, 0, w, h), patch, stride)
        if mask[win.row_off : win.row_off + patch, win.col_off : win.col_off + patch].mean() >= min_valid
    ]

    def score(img: np.ndarray, where: list[tuple[int, int]]) -> np.ndarray:
        ctx = seam_context(sar, img, mask, detector_block_px(patch)) if context else None
        out = []
        for x, y in where:
            sl = (slice(y, y + patch), slice(x, x + patch))
            pair = prepare_pair(sar[sl], img[sl], mask[sl])
            out.append(
                seamline_score(
                    pair.sar_blocks, pair.opt_blocks, pair.sar_noise, ctx.at((x, y)) if ctx else None
                )
            )
        return np.asarray(out, float).reshape(-1, 2)  # (score, angle)

    clean = score(opt, grid)
    result = SeamTrials(
        clean=clean[:, 0], clean_xy=np.asarray(grid, np.int64).reshape(-1, 2), clean_angle=clean[:, 1]
    )
    rng = np.random.default_rng(seed)
    c = (patch - 1) / 2.0
    for _ in range(trials):
        angle = rng.uniform(0.0, 180.0)
        x0, y0 = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        channel = int(rng.integers(0, opt.shape[2])) if opt.ndim == 3 and rng.random() < 0.5 else None
        t = np.deg2rad(angle)
        crossed = [
            (x, y) for x, y in grid if abs((x + c - x0) * np.sin(t) + (y + c - y0) * np.cos(t)) <= patch / 8
        ]
        for off in offsets:
            mag = abs(float(off))
            s = score(add_seam(opt, (x0, y0), angle, sign * mag, channel), crossed)[:, 0]
            result.seam[mag] = np.concatenate([result.seam.get(mag, np.zeros(0)), s])
    return result
