"""Coarse alignment on a low-resolution level: rotation, scale and translation by exhaustive search.

Automatic matching needs a starting transform good to a few low-resolution pixels. With no prior (or a loose one)
this module tries every rotation and scale of a grid: the optical image (decimated) is warped by each
candidate similarity, its structural features are computed, and the translation is found by a masked, normalised
cross-correlation with the SAR features over *all* shifts at once (FFT). The best candidates are then refined
on a finer angle/scale grid around them. With a prior (geocoding), the search runs around the prior instead.

Convention:
    Pixel coordinates: x = column, y = row, 0-based, pixel centres at integer coordinates. All matrices are 3x3
    homogeneous transforms mapping OPTICAL pixels to SAR pixels at the resolution they are stated at; use
    :func:`rescale_matrix` to move between resolutions. Angles are in degrees, counter-clockwise as seen on screen
    (x right, y down), i.e. a matrix ``[[c, s], [-s, c]]`` for angle ``a`` with ``c = cos a``, ``s = sin a``
    (OpenCV's ``getRotationMatrix2D`` sign).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft

from saropt.errors import InputError
from saropt.registration.auto.features import GradientOperator, orientation_field

logger = logging.getLogger(__name__)

#: normalise the correlation by the energies inside each overlap (exact) instead of the images' mean energies
NORMALISE_EXACT = True


@dataclass(frozen=True)
class CoarseParams:
    """Search space and scoring of the coarse alignment.

    Attributes:
        angles_deg: rotation candidates of the grid (degrees, see module convention).
        scales: scale candidates of the grid (SAR pixels per optical pixel of the images as given).
        n_seeds: how many distinct grid winners are verified on the finer level.
        verify_offsets: angles tried per seed on the finer level, in grid steps around the seed's angle.
        n_refine: how many verified seeds are refined by local hill-climbing in angle and scale.
        min_angle_step: the refinement stops below this angle step (degrees).
        two_level: run the grid on a level decimated by 2 (when the SAR is at least 96 px on its short side),
            then verify and refine on the level given. Four times fewer pixels per grid candidate.
        min_overlap: the overlap of the two valid areas must cover at least this fraction of the smaller one.
        sar_operator: SAR gradient operator.
        sar_sigma: SAR gradient scale (low-resolution pixels).
        opt_sigma: optical gradient scale (low-resolution pixels).
        smooth_sigma: integration scale of the orientation field (low-resolution pixels).
    """

    angles_deg: tuple[float, ...] = tuple(float(a) for a in range(-180, 180, 10))
    scales: tuple[float, ...] = (1.0,)
    n_seeds: int = 6
    verify_offsets: tuple[float, ...] = (-1.0 / 3.0, 0.0, 1.0 / 3.0)
    n_refine: int = 1
    min_angle_step: float = 1.0
    two_level: bool = True
    min_overlap: float = 0.5
    sar_operator: GradientOperator = "ratio"
    sar_sigma: float = 1.0
    opt_sigma: float = 1.0
    smooth_sigma: float = 1.5


@dataclass(frozen=True)
class CoarseCandidate:
    """One scored similarity.

    Attributes:
        matrix: 3x3 optical -> SAR matrix at the search resolution.
        angle_deg: rotation of the candidate.
        scale: scale of the candidate.
        score: ranking score, ``ncc * sqrt(overlap pixels)`` (a z-score up to a constant).
        ncc: masked normalised cross-correlation of the orientation fields at the best shift.
        overlap: overlap fraction at the best shift.

    Convention:
        ``matrix`` maps optical pixels to SAR pixels (x=col, y=row, 0-based, centres at integers).
    """

    matrix: np.ndarray
    angle_deg: float
    scale: float
    score: float
    ncc: float
    overlap: float


@dataclass(frozen=True)
class CoarseResult:
    """Outcome of :func:`coarse_search`.

    Attributes:
        best: the winning candidate (matrix at the resolution of the images given to :func:`coarse_search`).
        runner_up: the best verified candidate at a clearly different pose, or ``None``.
        n_evaluated: number of similarities scored, over both levels.
        candidates: every verified candidate, best first.
    """

    best: CoarseCandidate
    runner_up: CoarseCandidate | None
    n_evaluated: int
    candidates: tuple[CoarseCandidate, ...] = ()

    @property
    def distinctiveness(self) -> float:
        """``best.score / runner_up.score`` (inf when there is no runner-up or it scores <= 0)."""
        if self.runner_up is None or self.runner_up.score <= 0:
            return float("inf")
        return float(self.best.score / self.runner_up.score)


def similarity_matrix(angle_deg: float, scale: float, src_center: tuple[float, float]) -> np.ndarray:
    """3x3 similarity rotating by ``angle_deg`` and scaling by ``scale`` about ``src_center`` (kept in place).

    Convention:
        x = column, y = row; positive angles turn counter-clockwise on screen (OpenCV sign).
    """
    m = cv2.getRotationMatrix2D((float(src_center[0]), float(src_center[1])), float(angle_deg), float(scale))
    return np.vstack([m, [0.0, 0.0, 1.0]])


def rescale_matrix(matrix: np.ndarray, opt_factor: float, sar_factor: float) -> np.ndarray:
    """Express a low-resolution optical -> SAR matrix at full resolution.

    Args:
        matrix: 3x3 matrix between images decimated by ``opt_factor`` (optical) and ``sar_factor`` (SAR).
        opt_factor: optical decimation factor (full-resolution pixels per low-resolution pixel).
        sar_factor: SAR decimation factor.

    Returns:
        3x3 matrix between the full-resolution images.

    Convention:
        Pixel centres at integers: full-resolution ``x`` and low-resolution ``x'`` relate by
        ``x = f * (x' + 0.5) - 0.5``.
    """
    up_sar = np.array(
        [[sar_factor, 0, 0.5 * sar_factor - 0.5], [0, sar_factor, 0.5 * sar_factor - 0.5], [0, 0, 1]]
    )
    down_opt = np.linalg.inv(
        np.array(
            [[opt_factor, 0, 0.5 * opt_factor - 0.5], [0, opt_factor, 0.5 * opt_factor - 0.5], [0, 0, 1]]
        )
    )
    return up_sar @ matrix @ down_opt


def _centred(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Subtract the mean over valid pixels and zero the invalid ones."""
    z = z.copy()
    if valid.any():
        z[valid] -= z[valid].mean()
    z[~valid] = 0
    return z


class _SarSpectrum:
    """FFTs of the SAR orientation field, its energy and its mask, computed once for every candidate."""

    def __init__(self, z: np.ndarray, valid: np.ndarray, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.n_valid = float(valid.sum())
        self.z = sfft.fft2(z, s=shape, workers=-1)
        self.e = sfft.rfft2((z.real**2 + z.imag**2).astype(np.float32), s=shape, workers=-1)
        self.m = sfft.rfft2(valid.astype(np.float32), s=shape, workers=-1)
        self.mean_energy = float((z.real**2 + z.imag**2)[valid].mean()) if valid.any() else 1.0


def _correlate(
    sar: _SarSpectrum, z: np.ndarray, valid: np.ndarray, min_overlap: float, exact: bool | None = None
) -> tuple[float, float, int, int, float]:
    """Best shift ``(dx, dy)`` placing the optical field onto the SAR field: ``sar(y, x) ~ opt(y - dy, x - dx)``.

    Returns:
        ``(zscore, ncc, dx, dy, overlap_fraction)``; zscore is -inf when no shift has enough overlap.
    """
    shape = sar.shape
    fz = sfft.fft2(z, s=shape, workers=-1)
    num = sfft.ifft2(sar.z * np.conj(fz), workers=-1).real
    fm = sfft.rfft2(valid.astype(np.float32), s=shape, workers=-1)
    ov = sfft.irfft2(sar.m * np.conj(fm), s=shape, workers=-1)
    n_small = min(sar.n_valid, float(valid.sum()))
    ok = ov >= max(min_overlap * n_small, 16.0)
    if exact if exact is not None else NORMALISE_EXACT:
        fe = sfft.rfft2((z.real**2 + z.imag**2).astype(np.float32), s=shape, workers=-1)
        e_sar = sfft.irfft2(sar.e * np.conj(fm), s=shape, workers=-1)
        e_opt = sfft.irfft2(sar.m * np.conj(fe), s=shape, workers=-1)
        den = np.sqrt(np.maximum(e_sar * e_opt, 1e-12))
    else:
        # Energies taken as uniform over each image: the overlap count times the mean energy per pixel.
        e_s = sar.mean_energy
        e_o = float((z.real**2 + z.imag**2)[valid].mean()) if valid.any() else 1.0
        den = np.maximum(ov, 1.0) * np.sqrt(max(e_s * e_o, 1e-12))
    ncc = num / den
    # Rank by a z-score: the NCC of unrelated fields scatters as 1 / sqrt(overlap), so small overlaps would
    # otherwise win by chance.
    zs = np.where(ok, ncc * np.sqrt(np.maximum(ov, 0.0)), -np.inf)
    k = int(np.argmax(zs))
    iy, ix = divmod(k, shape[1])
    dy = iy if iy <= shape[0] // 2 else iy - shape[0]
    dx = ix if ix <= shape[1] // 2 else ix - shape[1]
    return float(zs.flat[k]), float(ncc.flat[k]), dx, dy, float(ov.flat[k] / max(n_small, 1.0))


def _evaluate(
    sar: _SarSpectrum,
    opt: np.ndarray,
    opt_valid: np.ndarray,
    angle: float,
    scale: float,
    params: CoarseParams,
) -> CoarseCandidate:
    h, w = opt.shape
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    side = int(np.ceil(np.hypot(h, w) * scale)) + 3
    m = similarity_matrix(angle, scale, c)
    m[:2, 2] += np.array([(side - 1) / 2.0 - c[0], (side - 1) / 2.0 - c[1]])
    interp = cv2.INTER_AREA if scale < 0.8 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(opt, m[:2], (side, side), flags=interp, borderMode=cv2.BORDER_REFLECT)
    wvalid = (
        cv2.warpAffine(
            opt_valid.astype(np.uint8), m[:2], (side, side), flags=cv2.INTER_NEAREST, borderValue=0
        )
        > 0
    )
    z, zvalid = orientation_field(warped, wvalid, "gaussian", params.opt_sigma, params.smooth_sigma)
    z = _centred(z, zvalid)
    score, ncc, dx, dy, ov = _correlate(sar, z, zvalid, params.min_overlap)
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
    return CoarseCandidate(
        matrix=shift @ m, angle_deg=float(angle), scale=float(scale), score=score, ncc=ncc, overlap=ov
    )


class _Level:
    """One resolution level of the search: the SAR spectrum and the optical image to warp."""

    def __init__(
        self,
        sar: np.ndarray,
        sar_valid: np.ndarray,
        opt: np.ndarray,
        opt_valid: np.ndarray,
        max_scale: float,
        params: CoarseParams,
    ) -> None:
        self.opt = opt.astype(np.float32)
        self.opt_valid = opt_valid
        self.params = params
        zs, zvalid = orientation_field(
            sar, sar_valid, params.sar_operator, params.sar_sigma, params.smooth_sigma
        )
        zs = _centred(zs, zvalid)
        h, w = sar.shape
        oh, ow = opt.shape
        side = int(np.ceil(np.hypot(oh, ow) * max_scale)) + 3
        shape = (sfft.next_fast_len(h + side), sfft.next_fast_len(w + side))
        self.spec = _SarSpectrum(zs, zvalid, shape)
        self.max_scale = max_scale
        self.n_evaluated = 0

    def evaluate(self, angle: float, scale: float) -> CoarseCandidate:
        self.n_evaluated += 1
        return _evaluate(self.spec, self.opt, self.opt_valid, angle, min(scale, self.max_scale), self.params)


def _decimate2(img: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape
    size = (max(1, w // 2), max(1, h // 2))
    a = cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    v = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.99
    return a, v


def _distinct(
    cands: list[CoarseCandidate], k: int, angle_tol: float, log_scale_tol: float
) -> list[CoarseCandidate]:
    out: list[CoarseCandidate] = []
    for c in cands:
        if all(
            _angle_diff(c.angle_deg, d.angle_deg) > angle_tol
            or abs(np.log(c.scale / d.scale)) > log_scale_tol
            for d in out
        ):
            out.append(c)
        if len(out) >= k:
            break
    return out


def _hill_climb(
    level: _Level, start: CoarseCandidate, angle_step: float, log_scale_step: float, min_angle_step: float
) -> CoarseCandidate:
    """Local search in angle and scale around ``start``, halving the steps when no neighbour is better."""
    best = start
    da, ds = angle_step, log_scale_step
    for _ in range(12):
        moves = [(da, 0.0), (-da, 0.0)]
        if ds > 0:
            moves += [(0.0, ds), (0.0, -ds)]
        improved = False
        for a_off, s_off in moves:
            c = level.evaluate(best.angle_deg + a_off, best.scale * float(np.exp(s_off)))
            if c.score > best.score:
                best, improved = c, True
        if not improved:
            da, ds = da / 2.0, ds / 2.0
            if da < min_angle_step:
                break
    return best


def coarse_search(
    sar: np.ndarray,
    sar_valid: np.ndarray,
    opt: np.ndarray,
    opt_valid: np.ndarray,
    params: CoarseParams | None = None,
) -> CoarseResult:
    """Exhaustive similarity search between two low-resolution images.

    The grid of ``params.angles_deg x params.scales`` is scored on a level decimated by two (``two_level``); the
    ``n_seeds`` best distinct poses are re-scored on the level given, and the ``n_refine`` best of those are
    refined by hill-climbing in angle and scale down to ``min_angle_step``.

    Args:
        sar: ``(H, W)`` low-resolution SAR image.
        sar_valid: ``(H, W)`` bool validity.
        opt: ``(h, w)`` low-resolution optical image (single band).
        opt_valid: ``(h, w)`` bool validity.
        params: search grid and feature settings.

    Returns:
        A :class:`CoarseResult` whose matrices map optical to SAR pixels of these images.

    Raises:
        InputError: if the angle or scale grid is empty or a scale is not positive.

    Convention:
        x = column, y = row, 0-based, pixel centres at integer coordinates; matrices map optical -> SAR.
    """
    params = params or CoarseParams()
    if not params.angles_deg or not params.scales or min(params.scales) <= 0:
        raise InputError("coarse search needs at least one angle and one positive scale")
    angles = sorted(float(a) for a in params.angles_deg)
    scales = sorted(float(s) for s in params.scales)
    a_step = _angle_step(angles)
    ls_step = float(np.min(np.diff(np.log(scales)))) if len(scales) > 1 else 0.0
    max_scale = scales[-1] * float(np.exp(ls_step)) * 1.1

    fine = _Level(sar, sar_valid, opt, opt_valid, max_scale, params)
    use_two = params.two_level and min(sar.shape) >= 96 and min(opt.shape) >= 32
    if use_two:
        s2, sv2 = _decimate2(sar, sar_valid)
        o2, ov2 = _decimate2(opt, opt_valid)
        grid_level = _Level(s2, sv2, o2, ov2, max_scale, params)
    else:
        grid_level = fine
    grid = sorted((grid_level.evaluate(a, s) for s in scales for a in angles), key=lambda c: -c.score)
    seeds = _distinct(grid, params.n_seeds, 1.5 * a_step, 1.5 * ls_step if ls_step > 0 else 0.0)
    if use_two:
        verified = []
        for sd in seeds:
            trial = [fine.evaluate(sd.angle_deg + k * a_step, sd.scale) for k in params.verify_offsets]
            verified.append(max(trial, key=lambda c: c.score))
    else:
        verified = list(seeds)
    verified.sort(key=lambda c: -c.score)
    refined = [
        _hill_climb(fine, v, a_step / 6.0, ls_step / 2.0, params.min_angle_step)
        for v in verified[: params.n_refine]
    ]
    cands = sorted(refined + verified[params.n_refine :], key=lambda c: -c.score)
    best = cands[0]
    runner = None
    for c in cands[1:]:
        if _angle_diff(c.angle_deg, best.angle_deg) > a_step or (
            ls_step > 0 and abs(np.log(c.scale / best.scale)) > ls_step
        ):
            runner = c
            break
    n_eval = fine.n_evaluated + (grid_level.n_evaluated if use_two else 0)
    logger.debug(
        "coarse search: angle %.1f scale %.3f ncc %.3f score %.1f (runner-up %s), %d similarities scored",
        best.angle_deg,
        best.scale,
        best.ncc,
        best.score,
        None if runner is None else f"{runner.score:.1f}",
        n_eval,
    )
    return CoarseResult(best=best, runner_up=runner, n_evaluated=n_eval, candidates=tuple(cands))


def _angle_step(angles: list[float]) -> float:
    a = np.asarray(angles, dtype=float)
    return float(np.min(np.diff(a))) if a.size > 1 else 360.0


def _angle_diff(a: float, b: float) -> float:
    d = (a - b + 180.0) % 360.0 - 180.0
    return abs(d)
