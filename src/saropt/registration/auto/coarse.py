"""Coarse alignment on a low-resolution level: rotation, scale and translation by exhaustive search.

Automatic matching needs a starting transform good to a few low-resolution pixels. With no prior (or a loose one)
this module tries every rotation and scale of a grid: the optical orientation field (computed once) is warped by
each candidate similarity, and the translation is found by a masked, normalised cross-correlation with the SAR
field over *all* shifts at once (FFT, :mod:`~saropt.registration.auto.fieldcorr`). The grid runs on a level
decimated by two; its best distinct poses are scored again on the level given (all translations), the angles
beside them and the hill-climbing refinement of the best in angle and scale search translations only near the
pose already found (a small FFT).
Candidates are scored on parallel threads. With a prior (geocoding), the search runs around the prior instead.

Convention:
    Pixel coordinates: x = column, y = row, 0-based, pixel centres at integer coordinates. All matrices are 3x3
    homogeneous transforms mapping OPTICAL pixels to SAR pixels at the resolution they are stated at; use
    :func:`rescale_matrix` to move between resolutions. Angles are in degrees, counter-clockwise as seen on screen
    (x right, y down), i.e. a matrix ``[[c, s], [-s, c]]`` for angle ``a`` with ``c = cos a``, ``s = sin a``
    (OpenCV's ``getRotationMatrix2D`` sign).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.registration.auto.config import thread_count
from saropt.registration.auto.features import GradientOperator, erode, orientation_field
from saropt.registration.auto.fieldcorr import SarSpectra, correlate_all, correlate_near
from saropt.registration.auto.sources import scale_matrix, translate_matrix

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


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
        near_radius: translations searched around a grid pose when it is verified and refined, as a fraction of
            the level's longer side (at least 8 pixels).
        threads: candidates scored at once on this many threads (``None``: one per CPU core, at most 4). The
            FFTs and warps release the GIL, and each is too small to gain from being split itself.
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
    near_radius: float = 0.05
    threads: int | None = None


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


class _OpticalField:
    """The optical image's orientation field, computed once per level and warped onto each candidate's canvas.

    A similarity with rotation ``a`` turns every gradient by ``-a`` (OpenCV sign) and the double-angle field by
    ``-2a``; the scale cancels in its normalisation and the Gaussian smoothing is isotropic. So the field of the
    warped image is the warped field times ``exp(-2ia)``: one bilinear warp per candidate instead of warping the
    image and computing its gradients and structure tensor again. The field is computed on the optical resized
    to ``base_scale`` (the middle of the searched scales), so the smoothing scales stay in SAR-level pixels.

    Args:
        opt: ``(h, w)`` float32 optical image at this level.
        opt_valid: its validity.
        base_scale: scale (SAR pixels per optical pixel) to compute the field at.
        params: feature settings.
    """

    def __init__(
        self, opt: np.ndarray, opt_valid: np.ndarray, base_scale: float, params: CoarseParams
    ) -> None:
        h, w = opt.shape
        if abs(np.log(max(base_scale, 1e-9))) > np.log(1.05):
            nw, nh = max(1, round(w * base_scale)), max(1, round(h * base_scale))
            interp = cv2.INTER_AREA if base_scale < 1.0 else cv2.INTER_LINEAR
            img = cv2.resize(opt, (nw, nh), interpolation=interp)
            val = cv2.resize(opt_valid.astype(np.float32), (nw, nh), interpolation=interp) > 0.99
            # optical pixel -> field pixel (cv2.resize grid)
            self.to_field = scale_matrix(w / nw, h / nh)
        else:
            img, val, self.to_field = opt, opt_valid, np.eye(3)
        z, zvalid = orientation_field(img, val, "gaussian", params.opt_sigma, params.smooth_sigma)
        # the image border counts as the edge of the valid area, as it does on a canvas around the image
        r = _field_margin(params)
        zvalid[:r] = False
        zvalid[-r:] = False
        zvalid[:, :r] = False
        zvalid[:, -r:] = False
        self.reim = np.ascontiguousarray(np.stack([z.real, z.imag], axis=-1), dtype=np.float32)
        self.valid = zvalid.astype(np.uint8)
        self.from_field = np.linalg.inv(self.to_field)

    def warp(self, m: np.ndarray, angle: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The field of the optical warped by ``m`` (3x3, optical -> canvas, rotation ``angle``) on a ``(w, h)``
        canvas, and its validity."""
        mm = (m @ self.from_field)[:2]
        reim = cv2.warpAffine(self.reim, mm, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        valid = cv2.warpAffine(self.valid, mm, size, flags=cv2.INTER_NEAREST, borderValue=0) > 0
        turn = np.complex64(np.exp(-2j * np.deg2rad(angle)))
        z = (reim[..., 0] + 1j * reim[..., 1]).astype(np.complex64) * turn
        return z, valid


class _Level:
    """One resolution level of the search: the SAR field (spectra cached per FFT shape) and the optical to warp.

    Two ways to score a pose: :meth:`evaluate` searches every translation (the optical warped onto the bounding
    box of its rotated, scaled footprint, so the FFT is no bigger than that angle needs); :meth:`evaluate_near_many`
    searches translations within a small radius of a pose already close, on the SAR grid grown by that radius.
    """

    def __init__(
        self,
        sar: np.ndarray,
        sar_valid: np.ndarray,
        opt: np.ndarray,
        opt_valid: np.ndarray,
        max_scale: float,
        params: CoarseParams,
        pool: ThreadPoolExecutor | None = None,
        base_scale: float = 1.0,
    ) -> None:
        self.pool = pool
        self.opt = opt.astype(np.float32)
        self.opt_valid = opt_valid
        self.params = params
        self.field = _OpticalField(self.opt, opt_valid, base_scale, params)
        zs, zvalid = orientation_field(
            sar, sar_valid, params.sar_operator, params.sar_sigma, params.smooth_sigma
        )
        self.spec = SarSpectra(_centred(zs, zvalid), zvalid)
        self.shape = sar.shape
        self.max_scale = max_scale
        self.n_evaluated = 0
        # valid pixels of the optical field at scale 1 (the field's support erodes the image's validity)
        self._n_opt = float(erode(opt_valid, _field_margin(params)).sum())

    def evaluate_many(self, poses: list[tuple[float, float]]) -> list[CoarseCandidate]:
        """:meth:`evaluate` for each ``(angle, scale)``, in parallel on the level's thread pool.

        Poses half a turn apart at the same scale are scored together: the second canvas is the first turned
        about its centre, so its transforms come from the first's (half the forward FFTs and warps).
        """
        self.n_evaluated += len(poses)
        index = {(round(a % 360.0, 6), s): i for i, (a, s) in enumerate(poses)}
        jobs: list[tuple[int, int | None]] = []
        taken: set[int] = set()
        for i, (a, s) in enumerate(poses):
            if i in taken:
                continue
            j = index.get((round((a + 180.0) % 360.0, 6), s))
            partner = j if j is not None and j != i and j not in taken else None
            jobs.append((i, partner))
            taken.update((i,) if partner is None else (i, partner))
        results: list[CoarseCandidate | None] = [None] * len(poses)
        done = _map(self.pool, lambda ij: self._evaluate(*poses[ij[0]], half_turn=ij[1] is not None), jobs)
        for (i, j), cands in zip(jobs, done):
            results[i] = cands[0]
            if j is not None:
                results[j] = replace(cands[1], angle_deg=float(poses[j][0]))
        return [c for c in results if c is not None]

    def evaluate_near_many(
        self, poses: list[tuple[float, float, np.ndarray]], radius: int
    ) -> list[CoarseCandidate]:
        """Score each ``(angle, scale, around)`` at its best translation within ``radius`` of ``around``
        (:meth:`_evaluate_near`), in parallel."""
        self.n_evaluated += len(poses)
        return _map(self.pool, lambda p: self._evaluate_near(p[0], p[1], p[2], radius), poses)

    def evaluate(self, angle: float, scale: float) -> CoarseCandidate:
        """Score a rotation and scale at its best translation (all translations searched)."""
        self.n_evaluated += 1
        return self._evaluate(angle, scale)[0]

    def _evaluate(self, angle: float, scale: float, half_turn: bool = False) -> list[CoarseCandidate]:
        """The candidate at ``angle`` (and with ``half_turn`` the one at ``angle + 180``)."""
        scale = min(scale, self.max_scale)
        h, w = self.opt.shape
        c = ((w - 1) / 2.0, (h - 1) / 2.0)
        a = np.deg2rad(angle)
        ca, sa = abs(np.cos(a)), abs(np.sin(a))
        # (the tolerance keeps a half-turn's canvas the same size despite rounding in cos and sin)
        bw = int(np.ceil(scale * (w * ca + h * sa) - 1e-6)) + 3
        bh = int(np.ceil(scale * (w * sa + h * ca) - 1e-6)) + 3
        m = similarity_matrix(angle, scale, c)
        m[:2, 2] += np.array([(bw - 1) / 2.0 - c[0], (bh - 1) / 2.0 - c[1]])
        z, zvalid = self.field.warp(m, angle, (bw, bh))
        peaks = correlate_all(
            self.spec, _centred(z, zvalid), zvalid, self.params.min_overlap, half_turn=half_turn
        )
        # the half-turned canvas: every canvas pixel q goes to (bw - 1, bh - 1) - q
        turn = np.array([[-1.0, 0.0, bw - 1.0], [0.0, -1.0, bh - 1.0], [0.0, 0.0, 1.0]])
        return [
            CoarseCandidate(
                matrix=translate_matrix(pk.dx, pk.dy) @ (m if k == 0 else turn @ m),
                angle_deg=float(angle + 180.0 * k),
                scale=float(scale),
                score=pk.score,
                ncc=pk.ncc,
                overlap=pk.overlap,
            )
            for k, pk in enumerate(peaks)
        ]

    def _evaluate_near(self, angle: float, scale: float, around: np.ndarray, radius: int) -> CoarseCandidate:
        """Score a rotation and scale at its best translation within ``radius`` of the pose ``around``.

        The rotation pivots on the optical point that ``around`` puts on the SAR centre, so a small change of
        angle keeps the overlap in place.

        Args:
            angle: rotation (degrees).
            scale: scale.
            around: 3x3 optical -> SAR matrix at this level close to the pose sought (a few pixels).
            radius: translations searched, in this level's pixels.

        Returns:
            The :class:`CoarseCandidate`.
        """
        scale = min(scale, self.max_scale)
        h, w = self.shape
        oh, ow = self.opt.shape
        p = np.linalg.solve(around, [(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
        p = np.clip(p[:2] / p[2], [0.0, 0.0], [ow - 1.0, oh - 1.0])
        q = around @ [p[0], p[1], 1.0]
        m = similarity_matrix(angle, scale, (float(p[0]), float(p[1])))
        m[:2, 2] += q[:2] / q[2] - p
        r = int(radius)
        z, zvalid = self.field.warp(translate_matrix(r, r) @ m, angle, (w + 2 * r, h + 2 * r))
        pk = correlate_near(
            self.spec, _centred(z, zvalid), zvalid, r, self._n_opt * scale * scale, self.params.min_overlap
        )
        return CoarseCandidate(
            matrix=translate_matrix(pk.dx, pk.dy) @ m,
            angle_deg=float(angle),
            scale=float(scale),
            score=pk.score,
            ncc=pk.ncc,
            overlap=pk.overlap,
        )


def _map(pool: ThreadPoolExecutor | None, fn: Callable[[T], R], items: list[T]) -> list[R]:
    """``fn`` over ``items`` in order, on the pool when there is one."""
    if pool is None or len(items) < 2:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def _field_margin(params: CoarseParams) -> int:
    """Pixels by which the orientation field's support erodes the validity (see ``orientation_field``)."""
    return int(np.ceil(2.0 * params.opt_sigma + 2.0 * params.smooth_sigma)) + 1


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
    level: _Level,
    start: CoarseCandidate,
    angle_step: float,
    log_scale_step: float,
    min_angle_step: float,
    radius: int,
) -> CoarseCandidate:
    """Local search in angle and scale around ``start``, halving the steps when no neighbour is better; each
    neighbour's translation is searched within ``radius`` of the current best pose."""
    best = start
    da, ds = angle_step, log_scale_step
    for _ in range(12):
        moves = [(da, 0.0), (-da, 0.0)]
        if ds > 0:
            moves += [(0.0, ds), (0.0, -ds)]
        improved = False
        poses = [
            (best.angle_deg + a_off, best.scale * float(np.exp(s_off)), best.matrix) for a_off, s_off in moves
        ]
        for c in level.evaluate_near_many(poses, radius):
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

    n_threads = thread_count(params.threads)
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        base = float(np.sqrt(scales[0] * scales[-1]))  # the optical field is computed at this scale
        fine = _Level(sar, sar_valid, opt, opt_valid, max_scale, params, pool, base)
        use_two = params.two_level and min(sar.shape) >= 96 and min(opt.shape) >= 32
        if use_two:
            s2, sv2 = _decimate2(sar, sar_valid)
            o2, ov2 = _decimate2(opt, opt_valid)
            grid_level = _Level(s2, sv2, o2, ov2, max_scale, params, pool, base)
        else:
            grid_level = fine
        grid = sorted(
            grid_level.evaluate_many([(a, s) for s in scales for a in angles]), key=lambda c: -c.score
        )
        seeds = _distinct(grid, params.n_seeds, 1.5 * a_step, 1.5 * ls_step if ls_step > 0 else 0.0)
        # Each seed is scored again on the finer level over all translations at its own angle and scale (the
        # grid level can put the right pose's translation well off); the angles beside it and the refinement
        # then search translations near that pose only: an FFT of the SAR size plus a margin.
        radius = max(8, int(np.ceil(params.near_radius * max(sar.shape))))
        if use_two:
            again = fine.evaluate_many([(sd.angle_deg, sd.scale) for sd in seeds])
            offsets = [k for k in params.verify_offsets if k != 0.0]
            trials = fine.evaluate_near_many(
                [(g.angle_deg + k * a_step, g.scale, g.matrix) for g in again for k in offsets], radius
            )
            n_off = len(offsets)
            verified = [
                max([g, *trials[i * n_off : (i + 1) * n_off]], key=lambda c: c.score)
                for i, g in enumerate(again)
            ]
        else:
            verified = list(seeds)
        verified.sort(key=lambda c: -c.score)
        refined = [
            _hill_climb(fine, v, a_step / 6.0, ls_step / 2.0, params.min_angle_step, radius)
            for v in verified[: params.n_refine]
        ]
    finally:
        if pool is not None:
            pool.shutdown()
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
