"""Mosaicking seamline score: a long, sharp, straight optical brightness/colour step that the SAR does not show.

Optical mosaics (Google Earth, QXS-SAROPT's optical source) join images taken on different dates, so on one
side of a seamline the brightness, colour or haze is offset. The offset covers the whole side of the patch
beyond a straight line, cutting through fields and buildings alike, and the SAR (one acquisition) shows
nothing there. Roads and field boundaries are different: a road is a thin line with similar brightness on both
sides, and a field boundary usually shows in the SAR too.

The detector works on 16 px block means (for a 256 px patch), so speckle and fine texture are averaged out:

1. Every straight line through the patch is sampled (24 orientations 7.5 degrees apart, parallel lines one
   block apart, at least 60% of the patch side long). At each position ``t`` along a line the *wide step*
   ``D(t)`` is the mean of a band of 4 blocks (64 px) on one side minus the band on the other side: wide
   bands catch an offset that covers a whole side and average out texture and thin lines (roads). Lines whose
   bands would leave the patch are skipped, so seamlines within 64 px of the border are not seen.
2. The part of each optical channel's ``D(t)`` that the SAR's ``D(t)`` at the same place predicts (a linear
   regression over the whole patch: structure common to both images) is removed.
3. A line's *consistent step* is the lower quartile of its ``D(t)`` when that is positive, or minus the
   upper quartile when negative, else 0: at least three quarters of the line must show the step with one
   sign. The optical step of a line is the smaller of its consistent wide step and twice its consistent
   *sharp step* (between the two blocks right beside the line): a seamline is sharp, a gradual change of
   brightness across the patch is not. Every optical channel counts (colour-only seams too).
4. A consistent sharp SAR step on the line or up to 2 lines (32 px) beside it explains the optical step: the
   explained share rises from 0 to 1 as the SAR step rises from 2 to 4 times its speckle noise (measured on
   the patch). The reach allows for a beach (bright in the optical, dark in the SAR) between sea and land,
   layover and shadows.
5. The score is the largest unexplained step over lines and channels, in 8-bit grey levels (0 = none). For
   an offset ``d`` on a patch of little texture it is about ``0.75 d``; texture lowers it.

Measured (defaults): synthetic +40 grey-level seams on textured field scenes with speckled single-look SAR
scored a median of 29-32 and exceeded 25 in 67-97% of patches (more texture, fewer), +60 seams in 100%; the
same scenes without a seam, with a road or with a field boundary seen by both modalities exceeded 25 in 0%,
0% and 10%. On 656 real 256 px Sentinel-1/Sentinel-2 patches (Los Angeles, no mosaicking), each judged alone,
6% exceeded 25 and 3% exceeded 30: coasts, airports and mountain shading, real optical boundaries that the SAR
shows weakly.
Cities have such boundaries too: on CFOG's urban pair (about 1 m, 530 px, registered by its check points, no
mosaicking known) 23 of 81 256 px patches at stride 32 exceeded 25 (12 of 169 at 128 px), 21 of them on one
arterial road at 15 degrees that separates bright flat roofs from tree-covered houses; the scene is too small
for the context below to follow the line.
Raise ``seamline_max`` for rugged, coastal or urban scenes if the rejected/ review shows such patches. A
seamline that runs along an edge the SAR shows (a road, a coast) is not detected: only unexplained steps are.

With context (a build passes its whole unit, :func:`seam_context`): a seamline runs on for kilometres with one
sign, while the common false alarm, a straight boundary between fields of different colour but similar
backscatter, ends or changes sign within a few hundred metres. The strongest distinct candidate lines of the
patch are followed ``EXTEND`` (3) patch sides long, and each keeps the smaller of its patch step and the lower
quartile of its step along the whole followed line. Measured on saropt's synthetic 8000 px scene (farmland,
a +26..33 grey-level seamline, fields differing by up to 100): patches more than 181 px from the seam flagged
29.8% without context and 2.9% with it; patches whose centre is within 64 px of the seam flagged 52% and 7%.
Without context that 52% was chance (the same rate as far away: the detected angle was mostly a field
boundary's); a seam that weak among fields that strong is beyond this detector, while +60 seams on the tests'
textured fields are still found in at least 7 of 8 areas.

On real scenes with seams injected into their registered optical (:mod:`saropt.quality.seam_trials`: a
brightness or colour step of +-40 or +-60 grey levels along a random line through the whole scene;
``benchmarks/seamline_real.py``), 256 px patches at stride 64, judged as a build judges them:

=====================================  =======  ============  ==============  ==============  =========
scenes                                 patches  false alarm   detected +-40   detected +-60   ROC area
=====================================  =======  ============  ==============  ==============  =========
GaoFen-3 + Maxar, Omaha, 1 m               180  2.2% (15%)    10% (69%)       74% (88%)       0.92/0.98
41 Sentinel-1/2 scenes, 10 m              6929  0.3% (7.5%)   38% (71%)       85% (96%)       0.96/0.99
CFOG urban (25) / rural (36), ~1 m          61  28% / 0%      47% / 6%        60% / 11%       0.59-0.76
=====================================  =======  ============  ==============  ==============  =========

Rates at ``seamline_max`` 25 with context (in brackets: each patch judged alone); the ROC area is for +-40 /
+-60. ``seamline_max`` 20 raises the detection of +-40 seams to 45% (Omaha) and 62% (Sentinel) for 5.0% and
0.9% false alarms; 15 to 79% and 80% for 7.8% and 3.2%. The single scenes are small samples: on Omaha's whole
SAR scene instead of its optical footprint (another patch grid and other lines) the same figures read 0.6%,
22% and 78%. CFOG's two scenes (530-600 px) are too small for the context to help and their patches do not
separate (ROC area about 0.6): the urban scene's boundaries flag as above, and along the rural scene's lines
its fields (white beside dark at 1 m) and lake shore outweigh a +-40 step. ``saropt calibrate`` measures all
this on a build's own scenes.

A build reads and warps :func:`context_margin` (346 px for 256 px patches) around each unit for the context.
Without it the context ended at the unit's edge: on the 8000 px benchmark scene, 2048 px units against one unit
holding the whole scene gave 38 against 25 seamline flags, 21 decisions differing, 16 of them in the outer
patches of a unit. With it the two agree on every flag (24 each), for 9-15% more CPU time and 130 MB more
peak memory in the benchmark build.

Convention:
    Arrays are in the SAR patch's pixel grid (x = column, y = row, 0-based, pixel centres at integers). The
    reported angle is the direction of the line in degrees counter-clockwise from the +x (column) axis as seen
    on screen (rows down), in ``[0, 180)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from saropt.quality.prep import block_size_for

N_ANGLES = 24
#: lines shorter than this fraction of the patch side are ignored (seamlines cross the patch)
MIN_LENGTH = 0.6
#: detector blocks are this many of the shared blocks (16 px for 256 px patches)
COARSEN = 2
#: width, in detector blocks, of the band on either side of a line (64 px at 256 px)
BAND = 4
#: quantile of the step along a line used as its score (0.25: three quarters must show it)
STEP_QUANTILE = 0.25
#: the step between the two blocks beside the line, times this, caps the wide step (a seamline is sharp)
SHARPNESS = 2.0
#: a SAR step of z noise standard deviations supports (explains) a line: not at all below the first value,
#: fully above the second, linearly in between
SUPPORT_Z = (2.0, 4.0)
#: a SAR step up to this many detector blocks (16 px each at 256 px) beside the line supports it
SUPPORT_REACH = 2
#: with context: the strongest distinct lines followed beyond the patch
CANDIDATES = 6
#: with context: length of the followed line, in patch sides, centred on the patch
EXTEND = 3.0
#: with context: fewest valid samples on the followed line, in patch sides, to judge it
MIN_EXTENDED = 1.5
#: with context: blocks with less than this valid fraction are missing
MIN_VALID = 0.5


def _max_filter_lines(a: np.ndarray, reach: int) -> np.ndarray:
    """Maximum over ``reach`` neighbouring lines on either side (axis 1), edges repeated (like scipy's
    ``maximum_filter1d(mode="nearest")``, without importing scipy.ndimage: 0.6 s per worker process).

    Repeating the edge adds no new value to a window that already holds the edge, so the maximum over the
    neighbours that exist is the same; shifted slices do it without padding (a tenth of ``np.pad``'s cost on
    these small arrays).
    """
    out = a.copy()
    n = a.shape[1]
    for k in range(1, min(reach, n - 1) + 1):
        np.maximum(out[:, k:], a[:, : n - k], out=out[:, k:])
        np.maximum(out[:, : n - k], a[:, k:], out=out[:, : n - k])
    return out


def _rotated_side(n: int) -> int:
    """Side of the rotated copies of an ``n x n`` block grid: every line through the grid fits in them."""
    return int(np.ceil(n * np.sqrt(2.0))) + 1


@lru_cache(maxsize=8)
def _line_maps(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampling maps of all rotated copies of an ``n x n`` block grid, stacked vertically, and the angles.

    Rotated copy ``a`` occupies rows ``a*S .. a*S+S-1`` of the maps; its column ``u`` at row ``v`` samples the
    block grid at ``centre + (u - c) * e_perp + (v - c) * e_line``, so each column is one straight line of
    direction ``e_line`` and neighbouring columns are parallel lines one block apart.
    """
    size = _rotated_side(n)
    c = (size - 1) / 2.0
    centre = (n - 1) / 2.0
    angles = np.arange(N_ANGLES) * (180.0 / N_ANGLES)
    u, v = np.meshgrid(np.arange(size) - c, np.arange(size) - c)
    maps_x, maps_y = [], []
    for deg in angles:
        t = np.deg2rad(deg)
        ex, ey = np.cos(t), -np.sin(t)  # on screen, rows down: positive angles turn towards the top
        px, py = -ey, ex
        maps_x.append(centre + u * px + v * ex)
        maps_y.append(centre + u * py + v * ey)
    return np.vstack(maps_x).astype(np.float32), np.vstack(maps_y).astype(np.float32), angles


def seamline_score(
    sar_blocks: np.ndarray,
    opt_blocks: np.ndarray,
    sar_noise: float,
    context: SeamContext | None = None,
) -> tuple[float, float]:
    """Largest optical straight-line step without SAR support, in grey levels.

    Args:
        sar_blocks: ``(h, w)`` SAR block means (NaN = missing), see :mod:`saropt.quality.prep`.
        opt_blocks: ``(h, w, C)`` optical block means on the same blocks (C = 1 or 3).
        sar_noise: noise (speckle) standard deviation of one SAR block mean, grey levels.
        context: block means of the area around the patch placed at the patch (:func:`seam_context`, then
            :meth:`SeamContext.at`): the ``CANDIDATES`` strongest distinct lines are followed ``EXTEND`` patch
            sides long, and each keeps the smaller of its patch step and its consistent step along the extended
            line. ``None`` judges the patch alone.

    Returns:
        ``(score, angle_deg)``: the score (0 when no line shows an unexplained step; NaN when the patch is too
        small or mostly invalid) and the direction of the strongest line (NaN when the score is not positive).
    """
    h, w = sar_blocks.shape
    hc, wc = h // COARSEN, w // COARSEN
    n = min(hc, wc)
    if n < 8:
        return float("nan"), float("nan")
    stack = np.concatenate([opt_blocks, sar_blocks[..., None]], axis=2).astype(np.float32)
    # A NaN block makes its detector block NaN (INTER_AREA averages it in): missing data stays missing.
    coarse = cv2.resize(stack[: n * COARSEN, : n * COARSEN], (n, n), interpolation=cv2.INTER_AREA)
    n_ch = coarse.shape[2]
    finite = np.isfinite(coarse[..., -1])
    if np.count_nonzero(finite) < n * n // 2:
        return float("nan"), float("nan")

    map_x, map_y, angles = _line_maps(n)
    size = map_x.shape[1]
    sampled = cv2.remap(
        coarse,
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(np.nan,) * 4,
    ).reshape(N_ANGLES, size, size, n_ch)
    lines = np.ascontiguousarray(sampled.transpose(0, 2, 3, 1))  # (angle, u, channel, t)

    # Step across the line between columns j+b-1 and j+b: mean of the b columns after minus the b before.
    # Samples outside the patch are NaN and make the step NaN, so both bands lie fully inside the patch.
    b = BAND
    n_lines = size - 2 * b + 1
    step = lines[:, b : b + n_lines] - lines[:, 0:n_lines]
    for k in range(1, b):
        step = step + (lines[:, b + k : b + k + n_lines] - lines[:, k : k + n_lines])
    step *= np.float32(1.0 / b)  # (angle, line, channel, t)
    # The same step between the two blocks right beside the line: a seamline is sharp, so this is as large
    # as the wide step, while a gradual change of brightness across the patch gives a small one.
    sharp = lines[:, b : b + n_lines] - lines[:, b - 1 : b - 1 + n_lines]

    # The optical step that the SAR step at the same place does not predict: regress each optical channel's
    # steps on the SAR's over the whole patch (texture and boundaries common to both), keep the residual.
    valid = np.isfinite(step[:, :, -1, :])
    d_sar = np.where(valid, step[:, :, -1, :], 0.0)
    d_opt = np.where(valid[:, :, None, :], step[:, :, :-1, :], 0.0)
    var_sar = float(np.einsum("alt,alt->", d_sar, d_sar))
    beta = np.einsum("alct,alt->c", d_opt, d_sar) / var_sar if var_sar > 0 else np.zeros(n_ch - 1)
    resid = step[:, :, :-1, :] - beta[None, None, :, None].astype(np.float32) * step[:, :, -1:, :]

    # Consistent step along each line: the lower quartile when positive, minus the upper one when negative.
    # Only long enough lines count for the optical channels, so only theirs are sorted; the SAR's sharp step
    # is needed on every line (it supports its neighbours).
    n_ok = valid.sum(axis=-1)  # (angle, line)
    last = np.maximum(n_ok - 1, 0)
    n_opt = n_ch - 1
    lo_k = np.floor(STEP_QUANTILE * last + 0.5).astype(np.intp)
    hi_k = np.floor((1.0 - STEP_QUANTILE) * last + 0.5).astype(np.intp)
    long_line = n_ok >= MIN_LENGTH * n
    lower = np.zeros((N_ANGLES, n_lines, n_opt + n_ch), np.float32)
    upper = np.zeros_like(lower)
    # (order statistics picked by plain fancy indexing: np.take_along_axis costs 50 us a call here)
    sar_sorted = np.sort(np.where(valid, sharp[:, :, -1, :], np.nan), axis=-1).reshape(-1, valid.shape[-1])
    rows = np.arange(sar_sorted.shape[0])
    lower[..., -1] = sar_sorted[rows, lo_k.ravel()].reshape(lo_k.shape)  # NaN sorts last
    upper[..., -1] = sar_sorted[rows, hi_k.ravel()].reshape(hi_k.shape)
    if long_line.any():
        sel = np.concatenate([resid[long_line], sharp[long_line][:, :-1]], axis=1)  # (lines, channels, t)
        sel = np.where(valid[long_line][:, None, :], sel, np.nan)
        sel.sort(axis=-1)
        li = np.arange(sel.shape[0])[:, None]
        ci = np.arange(sel.shape[1])[None, :]
        lower[long_line, :-1] = sel[li, ci, lo_k[long_line][:, None]]
        upper[long_line, :-1] = sel[li, ci, hi_k[long_line][:, None]]
    # (angle, line, channel); lower and upper are NaN together (too few samples), and fmax then gives 0
    consistent = np.fmax(np.maximum(lower, -upper), np.float32(0.0))
    # (lines shorter than MIN_LENGTH kept lower = upper = 0 for the optical channels, so their step is 0)
    opt_step = np.minimum(consistent[..., :n_opt], SHARPNESS * consistent[..., n_opt : 2 * n_opt])
    # A boundary that the SAR shows consistently along the line explains the optical step. The SAR edge may
    # sit a little off the optical one (a beach is bright in the optical and dark in the SAR; layover, shadow,
    # residual misregistration), so the strongest SAR step within SUPPORT_REACH lines counts.
    sar_step = _max_filter_lines(consistent[..., -1], SUPPORT_REACH)
    # Significance of the SAR's sharp step against speckle: the difference of two detector blocks of
    # COARSEN**2 shared blocks each.
    band_noise = float(sar_noise) * np.sqrt(2.0) / COARSEN if np.isfinite(sar_noise) else 0.0
    z = sar_step / max(band_noise, 1e-3)
    support = np.clip((z - SUPPORT_Z[0]) / (SUPPORT_Z[1] - SUPPORT_Z[0]), 0.0, 1.0)
    unexplained = opt_step * (1.0 - support)[..., None]
    if context is None:
        best = int(np.argmax(unexplained))
        score = float(unexplained.flat[best])
        angle = float(angles[np.unravel_index(best, unexplained.shape)[0]])
        return score, (angle if score > 0 else float("nan"))

    # With context: a seamline runs on well beyond the patch with the same sign; a field or land-cover boundary
    # ends (or changes sign) within a few hundred metres. Follow the strongest distinct candidates through the
    # context; a candidate keeps the smaller of its patch step and its step along the extended line.
    per_line = unexplained.max(axis=2)  # (angle, line)
    channel = unexplained.argmax(axis=2)
    candidates: list[tuple[float, float, float, int, float, float]] = []
    for _ in range(CANDIDATES):
        a_i, l_i = np.unravel_index(int(np.argmax(per_line)), per_line.shape)
        patch_step = float(per_line[a_i, l_i])
        if patch_step <= 0.0:
            break  # the score starts at 0: a line without a step cannot win
        ch = int(channel[a_i, l_i])
        sign = 1.0 if lower[a_i, l_i, ch] > 0 else -1.0
        offset = l_i + b - 0.5 - (size - 1) / 2.0  # the line lies between columns l_i + b - 1 and l_i + b
        candidates.append((patch_step, float(angles[a_i]), offset, ch, sign, float(beta[ch])))
        for a_k in (a_i - 1, a_i, a_i + 1):  # the same boundary at a neighbouring angle or offset
            per_line[a_k % N_ANGLES, max(l_i - 2, 0) : l_i + 3] = -1.0
    score, angle = 0.0, float("nan")
    for (patch_step, deg, *_), ext in zip(candidates, _extended_steps(context, candidates, n)):
        if patch_step <= score:
            break  # following a line only lowers its step: none of the weaker ones can win
        value = patch_step if not np.isfinite(ext) else min(patch_step, max(ext, 0.0))
        if value > score:
            score, angle = value, deg
    return score, (angle if score > 0 else float("nan"))


def detector_block_px(patch: int) -> int:
    """Side in pixels of the detector blocks (and of the context's blocks) for square ``patch`` px patches:
    ``COARSEN`` quality blocks, 16 px for 256 px patches."""
    return COARSEN * block_size_for(patch, patch)


def context_margin(patch: int) -> int:
    """Pixels of context a patch's followed lines can reach beyond its edge (on each side), bilinear taps
    included: ``346`` for 256 px patches.

    A candidate lies up to half the rotated grid's side from the patch centre (a diagonal line near a corner),
    its band spans ``BAND`` blocks on either side, and it is followed ``EXTEND / 2`` patch sides either way.
    A build reads and warps this margin around each unit so that patches at a unit's edge are judged on the
    same context as those inside it.
    """
    d = detector_block_px(patch)
    n = max(patch // d, 1)
    size = _rotated_side(n)
    across = (size - 1) / 2.0 + BAND
    along = EXTEND * n / 2.0
    reach_px = (float(np.hypot(across, along)) + 1.0) * d  # from the patch centre, plus one bilinear block
    return max(0, int(np.ceil(reach_px - patch / 2.0)))


@dataclass(frozen=True)
class SeamContext:
    """Detector-block means of the area around a patch, to follow a candidate seamline beyond the patch.

    Attributes:
        stack: ``(Hc, Wc, C + 1)`` float32 detector-block means of the area (optical channels, then the SAR),
            NaN where a block is mostly invalid; block ``(i, j)`` covers rows ``i*d .. i*d+d-1`` and columns
            ``j*d .. j*d+d-1`` of the area, ``d = block_px``.
        block_px: detector block size ``d`` in pixels (``COARSEN`` quality blocks: 16 px at 256 px).
        origin: ``(x, y)`` of the patch's top-left pixel in the area's pixel grid.
    """

    stack: np.ndarray
    block_px: int
    origin: tuple[int, int] = (0, 0)

    def at(self, origin: tuple[int, int]) -> SeamContext:
        """The same context for the patch whose top-left pixel is ``origin = (x, y)`` (no copy)."""
        return SeamContext(self.stack, self.block_px, (int(origin[0]), int(origin[1])))


def seam_context(sar: np.ndarray, opt: np.ndarray, valid: np.ndarray | None, block_px: int) -> SeamContext:
    """Detector-block means of a whole area (e.g. a build unit) for :func:`seamline_score`.

    Args:
        sar: ``(H, W)`` uint8 SAR.
        opt: ``(H, W, C)`` or ``(H, W)`` uint8 optical on the SAR grid.
        valid: ``(H, W)`` bool validity (``None`` = all valid).
        block_px: detector block size in pixels (:func:`detector_block_px`: 16 for 256 px patches).

    Returns:
        The context with ``origin = (0, 0)``; :meth:`SeamContext.at` places it for each patch.

    Convention:
        The area's pixel grid (x = column, y = row, 0-based); block ``(i, j)`` covers rows ``i*d .. i*d+d-1``.
    """
    h, w = sar.shape[:2]
    d = int(block_px)
    hc, wc = max(h // d, 1), max(w // d, 1)
    o = opt if opt.ndim == 3 else opt[..., None]
    n_opt = o.shape[2]
    if h < d or w < d:
        return SeamContext(np.full((hc, wc, n_opt + 1), np.nan, np.float32), d)
    # uint8 throughout (OpenCV's integer-factor area reduction): a tenth of the memory traffic of float32; the
    # block means are rounded to whole grey levels, far below the steps measured. The optical (interleaved as
    # read) and the SAR are reduced apart and joined small: interleaving them first copied every pixel twice.
    images = [
        np.asarray(o[: hc * d, : wc * d], dtype=np.uint8),
        np.asarray(sar[: hc * d, : wc * d], dtype=np.uint8),
    ]
    all_valid = valid is None or bool(np.all(valid))
    if not all_valid:
        mask = np.ascontiguousarray(valid[: hc * d, : wc * d], dtype=np.uint8) * np.uint8(255)
        images = [cv2.bitwise_and(a, a, mask=mask) for a in images]
    small = [cv2.resize(a, (wc, hc), interpolation=cv2.INTER_AREA).reshape(hc, wc, -1) for a in images]
    means = np.concatenate(small, axis=2).astype(np.float32)
    if not all_valid:
        share = cv2.resize(mask, (wc, hc), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        means /= np.maximum(share, 1e-3)[..., None]
        means[share < MIN_VALID] = np.nan
    return SeamContext(means.reshape(hc, wc, n_opt + 1), d)


def _extended_steps(
    ctx: SeamContext, candidates: list[tuple[float, float, float, int, float, float]], n: int
) -> list[float]:
    """Consistent unexplained step of each of a patch's candidate lines, followed through the context.

    A candidate ``(patch_step, angle_deg, offset, ch, sign, beta)`` is a line of direction ``angle_deg`` lying
    ``offset`` detector blocks from the patch centre along its normal; it is followed ``EXTEND`` patch sides
    long, centred on the patch. Along it the wide band step of optical channel ``ch`` minus ``beta`` times the
    SAR's, times ``sign``, is sampled once per block; the result is its ``STEP_QUANTILE`` quantile over the
    valid samples, or NaN when fewer than ``MIN_EXTENDED * n`` samples are valid (too little context to judge).
    All candidates are sampled by one ``cv2.remap`` (each sample is computed alone: the values are those of one
    call per line).
    """
    if not candidates:
        return []
    d = ctx.block_px
    # The patch's detector grid is the context's shifted by origin / d blocks (block centres at integers).
    cx = ctx.origin[0] / d + (n - 1) / 2.0
    cy = ctx.origin[1] / d + (n - 1) / 2.0
    half = EXTEND * n / 2.0
    v = np.arange(-half, half + 1.0)
    s = np.concatenate([np.arange(-BAND, 0), np.arange(0, BAND)]) + 0.5  # band columns across the line
    # one scalar cosine and sine per line: NumPy's array and scalar paths may differ in the last bit
    e = np.array([(np.cos(np.deg2rad(c[1])), -np.sin(np.deg2rad(c[1]))) for c in candidates])  # (K, 2)
    ex, ey = e[:, 0, None, None], e[:, 1, None, None]
    px, py = -ey, ex
    across = np.array([c[2] for c in candidates])[:, None, None] + s[None, :, None]  # (K, 2 * BAND, 1)
    xs = cx + across * px + v[None, None, :] * ex
    ys = cy + across * py + v[None, None, :] * ey
    k_all = len(candidates)
    sampled = cv2.remap(
        ctx.stack,
        xs.reshape(k_all * 2 * BAND, v.size).astype(np.float32),
        ys.reshape(k_all * 2 * BAND, v.size).astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(np.nan,) * 4,
    ).reshape(k_all, 2 * BAND, v.size, -1)
    # (candidate, t, channel): the difference of the two band means; BAND is a power of two, so dividing the
    # difference of the sums is exact
    steps = (sampled[:, BAND:].sum(axis=1) - sampled[:, :BAND].sum(axis=1)) / np.float32(BAND)
    rows = np.arange(k_all)
    ch = np.array([c[3] for c in candidates])
    sign = np.array([c[4] for c in candidates], np.float32)[:, None]
    beta = np.array([c[5] for c in candidates], np.float32)[:, None]
    resid = sign * (steps[rows, :, ch] - beta * steps[:, :, -1])  # (K, t), float32 as one line at a time
    n_ok = np.isfinite(resid).sum(axis=1)
    resid.sort(axis=1)  # NaN last: the k-th finite value is the k-th of the row
    kth = np.floor(STEP_QUANTILE * (np.maximum(n_ok, 1) - 1) + 0.5).astype(np.intp)  # as the patch scan's
    out = resid[rows, kth].astype(np.float64)
    out[n_ok < MIN_EXTENDED * n] = np.nan
    return out.tolist()
