"""Automatic SAR-optical tie points and registration: coarse search, then matching passes down the pyramid.

1. **Start**: a prior transform (given, or from geocoding when both scenes are georeferenced), refined by a
   translation and small-rotation search on the coarse level; without one, an exhaustive rotation (full circle)
   and scale search on the coarse level (:mod:`~saropt.registration.auto.coarse`). When the result has too few
   inliers the whole search runs again from a finer coarse level (``config.retry_coarse_size``); a start whose
   last level cannot even refit the transform is left there for the retry, and finished only if that fails too.
2. **Pyramid**: from the coarse level down to full resolution in steps of at most 4, one matching pass per
   level (:mod:`~saropt.registration.auto.refine`), each followed by a robust affine refit, so initial offsets
   of tens to hundreds of pixels shrink to a pixel. Levels too big for memory are matched in chips. A pass that
   only refits uses ``config.refit_points`` candidates (all ``max_points`` if too few agree).
3. **Final pass** at full resolution with a small search radius around the refitted transform: these are the
   tie points, with reliabilities.
4. **Fit** (:func:`register`): staged filtering, flags not deletions: points below ``min_reliability`` are
   flagged first, RANSAC flags geometric outliers among the rest, the model is fitted to the inliers.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates. Transforms map OPTICAL
    pixels to SAR pixels. Tie points are in full-resolution pixels of each image; a ``region`` is a SAR window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from saropt.errors import InputError, NoOverlapError, RegistrationError, TiePointError
from saropt.io.tiepoints import TiePoints
from saropt.io.windows import Window
from saropt.registration.auto.coarse import CoarseParams, CoarseResult, coarse_search
from saropt.registration.auto.config import AutoConfig
from saropt.registration.auto.refine import LevelMatcher, PassResult, match_chips, transform_scale, warp_onto
from saropt.registration.auto.sources import Source, make_source, scale_matrix, translate_matrix
from saropt.registration.fit import Registration
from saropt.registration.transforms import Transform

logger = logging.getLogger(__name__)

#: message used (and tested) when an image has no structure to match
BLANK_MESSAGE = "no textured candidate points (image is blank or texture-less)"


@dataclass(frozen=True, eq=False)
class AutoMatch:
    """Everything the final pass found, before filtering (see :func:`match_auto`).

    Attributes:
        tiepoints: every usable match (score = reliability), unreliable ones included.
        matrix: the affine (3x3, optical -> SAR) the final pass was run around.
        n_candidates: candidates tried in the final pass.
        meta: provenance (levels, coarse search, timings), JSON-serialisable.

    Convention:
        Tie points in full-resolution pixels, x = column, y = row, 0-based, centres at integers.
    """

    tiepoints: TiePoints
    matrix: np.ndarray
    n_candidates: int
    meta: dict[str, Any]


def _prior_matrix(prior: Transform, region: Window) -> np.ndarray:
    """A 3x3 matrix for a prior: its own for linear models, else an affine fitted over the region."""
    m = prior.matrix
    if m is not None:
        return np.asarray(m, dtype=np.float64)
    from saropt.registration.transforms import fit_transform

    xs = np.linspace(region.col_off, region.col_end - 1, 9)
    ys = np.linspace(region.row_off, region.row_end - 1, 9)
    gx, gy = np.meshgrid(xs, ys)
    sar = np.column_stack([gx.ravel(), gy.ravel()])
    opt = prior.inverse(sar)
    ok = np.isfinite(opt).all(axis=1)
    return np.asarray(fit_transform("affine", opt[ok], sar[ok]).matrix)


def _check_texture(img: np.ndarray, valid: np.ndarray, what: str) -> None:
    if valid.sum() < 16:
        raise NoOverlapError(
            f"the {what} image has no valid pixels in the area to register; check nodata/region"
        )
    v = img[valid]
    if float(v.std()) <= 1e-6 * (abs(float(v.mean())) + 1e-3):
        raise RegistrationError(f"{what} image: {BLANK_MESSAGE}")


def _geocoding_prior(sar: Source, opt: Source, region: Window) -> np.ndarray | None:
    from saropt.io.raster import Scene

    if not (isinstance(sar.scene, Scene) and isinstance(opt.scene, Scene)):
        return None
    if not (sar.scene.georeferenced and opt.scene.georeferenced):
        return None
    from saropt.registration.geocoding import geocoding_registration

    reg = geocoding_registration(sar.scene, opt.scene, region=region, model="affine")
    return np.asarray(reg.transform.matrix, dtype=np.float64)


def _coarse(
    sar: Source, opt: Source, region: Window, m0: np.ndarray | None, config: AutoConfig
) -> tuple[np.ndarray, CoarseResult, float]:
    """Coarse transform (full resolution) from the coarse level, with or without a prior."""
    f_c = max(1.0, max(region.width, region.height) / config.coarse_size)
    simg, sval = sar.read_level(region, f_c)
    _check_texture(simg, sval, "SAR")
    h, w = simg.shape
    fx, fy = region.width / w, region.height / h
    sar_to_c = scale_matrix(fx, fy) @ translate_matrix(-region.col_off, -region.row_off)
    if m0 is None:
        if config.scale_prior == "footprint":
            s0 = float(np.sqrt(region.width * region.height / float(opt.width * opt.height)))
        else:
            s0 = 1.0
        f_o = max(1.0, f_c / s0)
        oimg, oval = opt.read_level(opt.window, f_o)
        _check_texture(oimg, oval, "optical")
        ofx, ofy = opt.width / oimg.shape[1], opt.height / oimg.shape[0]
        opt_to_c = scale_matrix(ofx, ofy)
        expected = s0 * np.sqrt(ofx * ofy) / np.sqrt(fx * fy)
        params = CoarseParams(
            angles_deg=config.angles(),
            scales=config.scales(expected),
            sar_operator=config.sar_operator,
            threads=config.threads,
        )
        res = coarse_search(simg, sval, oimg, oval, params)
        m = np.linalg.inv(sar_to_c) @ res.best.matrix @ opt_to_c
    else:
        # Warp the optical onto the coarse SAR grid with the prior; search translation and a little rotation.
        s = transform_scale(m0)
        f_o = max(1.0, f_c / max(s, 1e-9))
        oimg, oval = opt.read_level(opt.window, f_o)
        ofx, ofy = opt.width / oimg.shape[1], opt.height / oimg.shape[0]
        opt_to_c = scale_matrix(ofx, ofy)
        m_prior_c = sar_to_c @ m0 @ np.linalg.inv(opt_to_c)
        pad = max(h, w) // 2
        big = (h + 2 * pad, w + 2 * pad)
        shift = translate_matrix(pad, pad)
        wimg, wval = warp_onto(oimg, oval, shift @ m_prior_c, big)
        if wval.sum() < 16:
            raise NoOverlapError(
                "the optical image does not overlap the SAR region under the prior transform; "
                "check the georeferencing or pass --prior none"
            )
        _check_texture(wimg, wval, "optical")
        tol = config.prior_angle_tol_deg
        step = max(0.5, tol / 2.0)
        angles = tuple(float(a) for a in np.arange(-tol, tol + 1e-9, step)) if tol > 0 else (0.0,)
        params = CoarseParams(
            angles_deg=angles,
            scales=(1.0,),
            sar_operator=config.sar_operator,
            n_seeds=2,
            threads=config.threads,
        )
        res = coarse_search(simg, sval, wimg, wval, params)
        m = np.linalg.inv(sar_to_c) @ res.best.matrix @ shift @ sar_to_c @ m0
    return m, res, f_c


def _fit_affine(pr: PassResult, threshold: float, config: AutoConfig) -> tuple[np.ndarray | None, int]:
    """Robust affine through the reliable matches of a pass (between passes; quiet): ``(matrix, n_inliers)``,
    ``(None, n)`` when there are too few."""
    from saropt.registration.ransac import ransac
    from saropt.registration.transforms import fit_transform

    keep = pr.usable & (pr.reliability >= config.min_reliability)
    n = int(keep.sum())
    if n < config.min_inliers:
        return None, n
    opt, sar, w = pr.opt_xy[keep], pr.sar_xy[keep], pr.reliability[keep]
    try:
        res = ransac(
            opt,
            sar,
            "affine",
            threshold_px=threshold,
            max_iterations=config.ransac_iterations,
            seed=config.seed,
            probabilities=w,
        )
        inl = res.inliers
        if int(inl.sum()) < config.min_inliers:
            return None, int(inl.sum())
        t = fit_transform("affine", opt[inl], sar[inl], w[inl])
    except TiePointError:
        return None, n
    return np.asarray(t.matrix, dtype=np.float64), int(inl.sum())


def independent_count(xy: np.ndarray, score: np.ndarray, min_distance: float) -> int:
    """How many points remain when every point closer than ``min_distance`` to a better-scored one is dropped.

    Neighbouring candidates share most of their template, so they find the same structure; counting them
    separately would overstate the evidence for a transform.

    Convention:
        ``xy`` in pixels (x = column, y = row).
    """
    n = len(xy)
    if n == 0:
        return 0
    order = np.argsort(-np.asarray(score), kind="stable")
    pts = np.asarray(xy, dtype=np.float64)[order]
    d2 = float(min_distance) ** 2
    # close[i, j]: points i and j are closer than min_distance (a few thousand points at most: one matrix)
    close = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2) < d2
    alive = np.ones(n, dtype=bool)
    for i in range(n):  # best first: a kept point removes the worse points close to it
        if alive[i]:
            alive[i + 1 :] &= ~close[i, i + 1 :]
    return int(alive.sum())


def _levels(f_c: float, region: Window, max_pixels: int) -> list[float]:
    """Decimation factors of the matching levels below the coarse one: steps of 4 down to 1; levels above
    full resolution are kept within ``max_pixels`` (the full-resolution level may exceed it: chips)."""
    out: list[float] = []
    f = f_c
    f_min = float(np.sqrt(region.width * region.height / float(max_pixels)))
    while f > 1.0 + 1e-9:
        f = f / 4.0 if f / 4.0 >= 2.0 else 1.0
        if 1.0 < f < f_min:
            f = f_min
        out.append(f)
        if f <= f_min and f > 1.0:
            out.append(1.0)
            break
    return out or [1.0]


def _coarse_info(cres: CoarseResult, f_c: float, m: np.ndarray) -> dict[str, Any]:
    return {
        "factor": f_c,
        "angle_deg": cres.best.angle_deg,
        "scale": cres.best.scale,
        "ncc": cres.best.ncc,
        "distinctiveness": None if not np.isfinite(cres.distinctiveness) else cres.distinctiveness,
        "n_evaluated": cres.n_evaluated,
        "matrix": m.tolist(),
    }


def _pyramid(
    sar: Source,
    opt: Source,
    region: Window,
    m: np.ndarray,
    f_c: float,
    config: AutoConfig,
    give_up_early: bool = False,
    matchers: dict[float, LevelMatcher] | None = None,
) -> tuple[PassResult | None, np.ndarray, int, list[dict[str, Any]]]:
    """Matching passes from the coarse level down; returns the final pass, its transform, inliers and log.

    With ``give_up_early``, a last level whose first pass cannot refit the transform (the coarse start was
    probably wrong) ends there and the final pass comes back as ``None``: the caller has another start to try,
    and runs this one again in full only if that fails too. ``matchers`` keeps the in-memory levels (their SAR
    features) between calls, for the next start.
    """
    matchers = {} if matchers is None else matchers
    passes: list[dict[str, Any]] = []
    prev: PassResult | None = None
    levels = _levels(f_c, region, config.max_level_pixels)
    final: PassResult | None = None
    n_final = 0
    for k, f in enumerate(levels):
        last = k == len(levels) - 1
        next_is_chips = (
            not last and levels[k + 1] <= 1.0 and region.width * region.height > config.max_level_pixels
        )
        threshold = config.ransac_threshold_px * max(1.0, f)
        if f > 1.0 or region.width * region.height <= config.max_level_pixels:
            level = matchers.get(f) or LevelMatcher(sar, opt, region, f, config)
            if region.width * region.height / (f * f) <= config.max_level_pixels / 4:
                matchers[f] = level  # kept for the next start when small (big levels would hold much memory)
            if next_is_chips:
                pr = level.match(m, config.search_radius, max_points=config.chip_points)
                m_new, n_in = _fit_affine(pr, threshold, config)
            else:
                pr, m_new, n_in = _refit_pass(level, m, threshold, config, retry=not (last and give_up_early))
            lm: LevelMatcher | None = level
            mode = "memory"
        else:
            lm = None
            pr = match_chips(sar, opt, m, _chip_points(prev, config, region), config.search_radius, config)
            m_new, n_in = _fit_affine(pr, threshold, config)
            mode = "chips"
        passes.append(_pass_info(f, mode, config.search_radius, pr, n_in))
        if m_new is not None:
            m = m_new
        if last:
            if m_new is None and give_up_early:
                return None, m, n_in, passes
            if lm is not None:
                # candidates picked again on the optical warped with the refitted transform: a better warp lifts
                # many points that were below the reliability threshold in the first pass above it
                final = lm.match(m, config.final_radius)
            else:
                keep = pr.usable & (pr.reliability >= config.min_reliability)
                pts = pr.sar_xy[keep] if keep.sum() >= config.min_inliers else pr.sar_xy
                final = match_chips(sar, opt, m, _round_unique(pts), config.final_radius, config)
            _, n_final = _fit_affine(final, config.ransac_threshold_px, config)
            passes.append(_pass_info(f, mode, config.final_radius, final, n_final))
        prev = pr
    return final, m, n_final, passes


def _refit_pass(
    lm: LevelMatcher, m: np.ndarray, threshold: float, config: AutoConfig, retry: bool = True
) -> tuple[PassResult, np.ndarray | None, int]:
    """A pass that only refits the transform: ``config.refit_points`` well-spread candidates, and all
    ``config.max_points`` when those give fewer than ``3 min_inliers`` affine inliers (with ``retry=False`` not
    when they give no transform at all: the start is wrong, not the sample too small)."""
    n_pts = min(config.refit_points, config.max_points)
    pr = lm.match(m, config.search_radius, max_points=n_pts)
    m_new, n_in = _fit_affine(pr, threshold, config)
    if m_new is None and not retry:
        return pr, m_new, n_in
    if n_in < 3 * config.min_inliers and n_pts < config.max_points:
        pr2 = lm.match(m, config.search_radius, max_points=config.max_points)
        m2, n2 = _fit_affine(pr2, threshold, config)
        logger.debug("refit pass: %d inliers from %d points, %d from %d", n_in, n_pts, n2, config.max_points)
        if m_new is None or (m2 is not None and n2 >= n_in):
            return pr2, m2, n2
    return pr, m_new, n_in


def match_auto(
    sar: object,
    opt: object,
    *,
    region: Window | None = None,
    prior: Transform | None = None,
    config: AutoConfig | None = None,
) -> AutoMatch:
    """Run the coarse search and the matching passes; return every usable final match with its reliability.

    Args:
        sar: SAR :class:`~saropt.io.raster.Scene` or array (``(H, W)``, ``(H, W, B)`` or ``(B, H, W)``).
        opt: optical Scene or array.
        region: SAR window to register (default: the whole SAR image).
        prior: optical -> SAR transform to start from (default: geocoding when both are georeferenced scenes
            and ``config.use_geocoding``, else the coarse search).
        config: settings.

    Returns:
        The :class:`AutoMatch`.

    Raises:
        InputError: bad arrays or a region outside the SAR image.
        NoOverlapError: the region is empty, or the images do not overlap under the prior.
        RegistrationError: an image is blank, or no candidate could be matched.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; transforms map optical -> SAR.
    """
    config = config or AutoConfig()
    t0 = time.perf_counter()
    s_src = make_source(sar, "sar", config.array_nodata, config.max_level_pixels)
    o_src = make_source(opt, "optical", config.array_nodata, config.max_level_pixels)
    full = s_src.window
    if region is None:
        region = full
    inside = region.clip(s_src.width, s_src.height)
    if inside is None or inside.width < 16 or inside.height < 16:
        raise NoOverlapError(
            f"region {region.to_dict()} leaves less than 16 x 16 pixels of the {s_src.width}x{s_src.height} SAR image"
        )
    region = inside
    meta: dict[str, Any] = {"region": region.to_dict(), "config": config.to_dict()}

    m0: np.ndarray | None = None
    if prior is not None:
        m0 = _prior_matrix(prior, region)
        meta["prior"] = "given"
    elif config.use_geocoding:
        m0 = _geocoding_prior(s_src, o_src, region)
        meta["prior"] = "geocoding" if m0 is not None else "none"
    else:
        meta["prior"] = "none"

    sizes = [config.coarse_size]
    if config.retry_coarse_size and config.retry_coarse_size > config.coarse_size:
        sizes.append(config.retry_coarse_size)
    best: tuple[int, PassResult, np.ndarray, dict[str, Any]] | None = None
    cut_short: list[tuple[np.ndarray, float, dict[str, Any]]] = []
    matchers: dict[float, LevelMatcher] = {}  # levels shared by the starts (same SAR features)
    for attempt, size in enumerate(sizes):
        if attempt > 0 and max(region.width, region.height) <= sizes[attempt - 1]:
            break  # the previous attempt already searched at full resolution
        more = attempt + 1 < len(sizes) and max(region.width, region.height) > size
        m, cres, f_c = _coarse(s_src, o_src, region, m0, replace(config, coarse_size=size))
        info: dict[str, Any] = {"coarse": _coarse_info(cres, f_c, m)}
        final, m_final, n_in, passes = _pyramid(
            s_src, o_src, region, m, f_c, config, give_up_early=more, matchers=matchers
        )
        info["passes"] = passes
        logger.debug("coarse size %d: %d affine inliers in the final pass", size, n_in)
        if final is None:
            cut_short.append((m, f_c, info))  # no final pass: finished below if no start succeeds
            continue
        if best is None or n_in > best[0]:
            best = (n_in, final, m_final, info)
        if n_in >= max(2 * config.min_inliers, int(0.2 * int(final.usable.sum()))):
            break
    else:
        # No start met the bar: finish the ones cut short and keep the best of all.
        for m, f_c, info in cut_short:
            final, m_final, n_in, passes = _pyramid(s_src, o_src, region, m, f_c, config, matchers=matchers)
            info["passes"] = passes
            if final is not None and (best is None or n_in > best[0]):
                best = (n_in, final, m_final, info)
    if best is None:  # pragma: no cover - the last attempt always runs its final pass
        raise RegistrationError(BLANK_MESSAGE)
    _, final, m, info = best
    meta.update(info)
    meta["coarse_attempts"] = attempt + 1
    if final.n_candidates == 0:
        raise RegistrationError(BLANK_MESSAGE)
    use = final.usable
    tp = TiePoints(
        final.sar_xy[use],
        final.opt_xy[use],
        score=final.reliability[use],
        source="auto",
        meta={},
    )
    t_end = time.perf_counter()
    meta.update(
        n_candidates=final.n_candidates,
        n_usable=int(use.sum()),
        n_reliable=int((final.reliability[use] >= config.min_reliability).sum()),
        min_reliability=config.min_reliability,
        seconds={"total": t_end - t0},
    )
    tp = replace(tp, meta=meta)
    return AutoMatch(tiepoints=tp, matrix=m, n_candidates=final.n_candidates, meta=meta)


def _round_unique(pts: np.ndarray) -> np.ndarray:
    r = np.rint(pts).astype(np.int64)
    if len(r) == 0:
        return r
    _, idx = np.unique(r, axis=0, return_index=True)
    return r[np.sort(idx)]


def _chip_points(prev: PassResult | None, config: AutoConfig, region: Window) -> np.ndarray:
    """Full-resolution chip centres: the previous level's reliable matches (or all usable ones)."""
    if prev is None:
        xs = np.linspace(region.col_off + 64, region.col_end - 64, 20)
        ys = np.linspace(region.row_off + 64, region.row_end - 64, 20)
        gx, gy = np.meshgrid(xs, ys)
        return _round_unique(np.column_stack([gx.ravel(), gy.ravel()]))
    keep = prev.usable & (prev.reliability >= config.min_reliability)
    if keep.sum() < config.min_inliers:
        keep = prev.usable
    return _round_unique(prev.sar_xy[keep][: config.chip_points])


def _pass_info(f: float, mode: str, radius: int, pr: PassResult, n_in: int | None) -> dict[str, Any]:
    rel = pr.reliability[pr.usable]
    return {
        "factor": float(f),
        "mode": mode,
        "radius": int(radius),
        "n_candidates": pr.n_candidates,
        "n_usable": int(pr.usable.sum()),
        "n_reliable": int((rel >= 0.5).sum()),
        "n_inliers_affine": n_in,
    }


def auto_tiepoints(
    sar: object,
    opt: object,
    *,
    region: Window | None = None,
    prior: Transform | None = None,
    config: AutoConfig | None = None,
) -> TiePoints:
    """Automatic tie points between a SAR and an optical image.

    Structural features (oriented gradients, speckle-robust for SAR), FFT template matching at textured,
    well-spread candidates, coarse-to-fine from an exhaustive rotation/scale search or from a prior. Returns the
    matches whose reliability reaches ``config.min_reliability`` (all usable matches with
    ``config.keep_unreliable``); ``score`` is the reliability and ``meta`` records the search.

    Args:
        sar: SAR :class:`~saropt.io.raster.Scene` or array.
        opt: optical Scene or array.
        region: SAR window to find tie points in (default: the whole SAR image).
        prior: optical -> SAR transform to start from (default: geocoding for two georeferenced scenes).
        config: settings (:class:`AutoConfig`).

    Returns:
        :class:`~saropt.io.tiepoints.TiePoints` with ``source="auto"``.

    Raises:
        NoOverlapError: empty region, or no overlap under the prior.
        RegistrationError: a blank image, or fewer than ``config.min_inliers`` reliable tie points (the message
            says how many of how many candidates).

    Convention:
        x = column, y = row, 0-based, pixel centres at integers, each in its own full-resolution image.
    """
    config = config or AutoConfig()
    am = match_auto(sar, opt, region=region, prior=prior, config=config)
    tp = am.tiepoints
    reliable = tp.score >= config.min_reliability if tp.score is not None else np.ones(len(tp), bool)
    n_rel = int(reliable.sum())
    if n_rel < config.min_inliers:
        raise RegistrationError(_too_few_message(n_rel, am.n_candidates, config, "affine", 3))
    # The same evidence test as register(): enough independent points must agree on one affine.
    from saropt.registration.ransac import ransac

    sub = tp.subset(reliable)
    sub_score = sub.score if sub.score is not None else np.ones(len(sub))
    res = ransac(
        sub.opt_xy,
        sub.sar_xy,
        "affine",
        threshold_px=config.ransac_threshold_px,
        max_iterations=config.ransac_iterations,
        seed=config.seed,
        probabilities=sub_score,
    )
    n_indep = independent_count(sub.sar_xy[res.inliers], sub_score[res.inliers], config.template_size / 2.0)
    if n_indep < config.min_inliers:
        raise RegistrationError(
            _too_few_message(n_rel, am.n_candidates, config, "affine", 3, n_indep).replace(
                "inliers after RANSAC, got",
                "independent inliers after RANSAC (templates not overlapping), got",
            )
        )
    tp = replace(tp, meta={**tp.meta, "n_independent_inliers_affine": n_indep})
    return tp if config.keep_unreliable else tp.subset(reliable)


def _too_few_message(
    n_rel: int, n_cand: int, config: AutoConfig, model: str, need: int, n_in: int | None = None
) -> str:
    got = "" if n_in is None else f", got {n_in}"
    return (
        f"found {n_rel} reliable tie points of {n_cand} candidates (reliability >= {config.min_reliability:g}); "
        f"{model} needs {max(need, config.min_inliers)} inliers after RANSAC{got}: the images may not overlap "
        "or differ too much in rotation/scale; give a prior transform, widen the coarse search, or use "
        "manual tie points"
    )


def register(
    sar: object,
    opt: object,
    *,
    model: str = "affine",
    region: Window | None = None,
    prior: Transform | None = None,
    config: AutoConfig | None = None,
) -> Registration:
    """Register an optical image onto a SAR image automatically.

    Tie points come from :func:`match_auto`; filtering is staged and flags, never deletes: points below
    ``config.min_reliability`` are flagged as outliers first, then RANSAC (``config.ransac_threshold_px``)
    flags geometric outliers among the reliable ones and ``model`` is fitted to the inliers. Every usable match
    is in the result with its score, flag and residual.

    Args:
        sar: SAR Scene or array.
        opt: optical Scene or array.
        model: ``similarity``, ``affine``, ``projective``, ``polynomial2`` or ``tps``.
        region: SAR window to register (default: all of it).
        prior: optical -> SAR transform to start from.
        config: settings.

    Returns:
        A :class:`~saropt.registration.fit.Registration` with ``method="auto"``; ``meta`` holds the search
        details, the counts per stage and ``seconds``.

    Raises:
        InputError: unsupported model.
        NoOverlapError: see :func:`match_auto`.
        RegistrationError: blank image, or too few reliable points or inliers (the message says how many).

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; the transform maps optical -> SAR pixels.
    """
    from saropt.registration.fit import fit_registration
    from saropt.registration.transforms import model_class

    config = config or AutoConfig()
    if model == "identity":
        raise InputError(
            "model 'identity' needs no registration; choose similarity, affine, projective, "
            "polynomial2 or tps"
        )
    cls = model_class(model)  # InputError for unknown models, before any work
    t0 = time.perf_counter()
    am = match_auto(sar, opt, region=region, prior=prior, config=config)
    tp = am.tiepoints
    score = tp.score if tp.score is not None else np.ones(len(tp))
    reliable = score >= config.min_reliability
    n_rel = int(reliable.sum())
    need = max(cls.min_points, config.min_inliers)
    if n_rel < need:
        raise RegistrationError(_too_few_message(n_rel, am.n_candidates, config, model, cls.min_points))
    try:
        reg = fit_registration(
            tp.subset(reliable),
            model,
            robust=True,
            ransac_threshold_px=config.ransac_threshold_px,
            ransac_iterations=config.ransac_iterations,
            seed=config.seed,
            method="auto",
        )
    except TiePointError as exc:
        raise RegistrationError(
            _too_few_message(n_rel, am.n_candidates, config, model, cls.min_points) + f" ({exc})"
        ) from exc
    if reg.n_inliers < need:
        raise RegistrationError(
            _too_few_message(n_rel, am.n_candidates, config, model, cls.min_points, reg.n_inliers)
        )
    inliers = np.zeros(len(tp), dtype=bool)
    inliers[np.flatnonzero(reliable)] = reg.inliers
    n_indep = independent_count(tp.sar_xy[inliers], score[inliers], config.template_size / 2.0)
    if n_indep < need:
        raise RegistrationError(
            _too_few_message(n_rel, am.n_candidates, config, model, cls.min_points, n_indep).replace(
                "inliers after RANSAC, got",
                "independent inliers after RANSAC (templates not overlapping), got",
            )
        )
    residuals = np.sqrt(((reg.transform.forward(tp.opt_xy) - tp.sar_xy) ** 2).sum(axis=1))
    meta = {
        **reg.meta,
        **am.meta,
        "n_reliable": n_rel,
        "n_inliers": int(inliers.sum()),
        "n_independent_inliers": n_indep,
        "seconds": {**am.meta["seconds"], "total": time.perf_counter() - t0},
    }
    return replace(reg, tiepoints=tp, inliers=inliers, residuals=residuals, meta=meta)
