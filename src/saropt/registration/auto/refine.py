"""One matching pass: warp the optical image onto a SAR grid with the current transform, match feature templates.

Two ways to run a pass, with the same outcome (tie points in full-resolution pixels with reliabilities):

* :class:`LevelMatcher` keeps one pyramid level of the SAR region in memory (its features are computed once and
  reused by later passes at that level), warps the decimated optical image onto it, picks textured, well-spread
  candidates and matches them all at once;
* :func:`match_chips` reads, for each given point, a small SAR chip and the optical image warped onto it, so a
  full-resolution pass over a huge scene costs memory and I/O in proportion to the number of points only.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates. Transforms are 3x3
    matrices mapping full-resolution OPTICAL pixels to full-resolution SAR pixels. Tie points come back in
    full-resolution pixels of each image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from saropt.io.windows import Window
from saropt.registration.auto.config import AutoConfig, thread_count
from saropt.registration.auto.features import structural_features
from saropt.registration.auto.keypoints import select_candidates
from saropt.registration.auto.matcher import MatchParams, _result, match_points, match_stacks, window_variance
from saropt.registration.auto.sources import Source, scale_matrix, translate_matrix

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PassResult:
    """Matches of one pass, in full-resolution pixels.

    Attributes:
        sar_xy: ``(N, 2)`` matched SAR positions (template centre + offset).
        opt_xy: ``(N, 2)`` optical positions of the template centres.
        reliability: ``(N,)`` reliability in ``[0, 1]`` (0 where unusable).
        usable: ``(N,)`` bool: the match is defined (enough valid pixels, peak inside the search range).
        peak: ``(N,)`` peak correlation.
        n_candidates: candidates tried (N).
        centres: ``(N, 2)`` full-resolution SAR positions of the template centres (where the search started).
        texture: texture level of the reference image (90th percentile of the Shi-Tomasi response).

    Convention:
        x = column, y = row, 0-based, pixel centres at integers, each in its own full-resolution image.
    """

    sar_xy: np.ndarray
    opt_xy: np.ndarray
    reliability: np.ndarray
    usable: np.ndarray
    peak: np.ndarray
    n_candidates: int
    centres: np.ndarray
    texture: float


def _apply(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    q = p @ m[:2, :2].T + m[:2, 2]
    if not np.allclose(m[2], [0.0, 0.0, 1.0]):
        w = p @ m[2, :2] + m[2, 2]
        q = (p @ m[:2, :2].T + m[:2, 2]) / w[:, None]
    return q


def transform_scale(matrix: np.ndarray) -> float:
    """SAR pixels per optical pixel of a matrix (square root of its linear part's determinant)."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))


def warp_onto(
    opt: np.ndarray, opt_valid: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resample an optical array onto a grid through an optical -> grid matrix (bilinear).

    Args:
        opt: ``(h, w)`` float32 optical image.
        opt_valid: ``(h, w)`` bool validity.
        matrix: 3x3 matrix from ``opt`` pixels to output pixels (affine or projective).
        shape: output ``(H, W)``.

    Returns:
        ``(img, valid)`` on the output grid; a pixel is valid when its bilinear support is wholly valid.

    Convention:
        OpenCV pixel-centre convention (centres at integers) on both grids.
    """
    h, w = shape
    vf = opt_valid.astype(np.float32)
    src = np.where(opt_valid, opt, 0.0).astype(np.float32)
    if np.allclose(matrix[2], [0.0, 0.0, 1.0]):
        img = cv2.warpAffine(src, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        val = cv2.warpAffine(vf, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    else:
        img = cv2.warpPerspective(src, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        val = cv2.warpPerspective(vf, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    ok = val > 0.999
    return np.where(ok, img, 0.0).astype(np.float32), ok


class LevelMatcher:
    """A pyramid level of the SAR region held in memory, ready for matching passes.

    Args:
        sar: SAR source.
        opt: optical source.
        region: SAR window to register (full-resolution pixels).
        factor: decimation factor of this level (1 = full resolution).
        config: settings.
    """

    def __init__(self, sar: Source, opt: Source, region: Window, factor: float, config: AutoConfig) -> None:
        self.sar, self.opt, self.region, self.config = sar, opt, region, config
        img, valid = sar.read_level(region, factor)
        self.shape = img.shape
        h, w = img.shape
        self.fx, self.fy = region.width / w, region.height / h
        # full-resolution SAR pixel -> level pixel
        self.to_level = scale_matrix(self.fx, self.fy) @ translate_matrix(-region.col_off, -region.row_off)
        self.sar_img, self.sar_valid = img, valid
        self.sar_feat, self.sar_fvalid = structural_features(
            img, valid, config.sar_operator, config.sar_sigma, config.n_orientations, config.channel_sigma
        )
        self._opt_cache: dict[float, tuple[np.ndarray, np.ndarray, float]] = {}
        self._sar_var: np.ndarray | None = None
        # the warped optical and its features for the last matrix matched: a retry with another candidate cap
        # (the refit passes) reuses them
        self._last: tuple[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None

    @property
    def factor(self) -> float:
        return float(np.sqrt(self.fx * self.fy))

    def _optical(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The optical image at a decimation near this level's resolution, and its full-res -> array matrix."""
        s = transform_scale(matrix)
        f_o = max(1.0, self.factor / max(s, 1e-9))
        # quantise so that later passes at this level reuse the decimated optical
        key = max(1.0, float(2.0 ** (np.floor(np.log2(f_o) * 4) / 4)))
        if key not in self._opt_cache:
            win = self.opt.window
            img, val = self.opt.read_level(win, key)
            _h, w = img.shape
            self._opt_cache[key] = (img, val, float(win.width) / w)
        img, val, fo = self._opt_cache[key]
        fo_y = float(self.opt.height) / img.shape[0]
        return img, val, scale_matrix(fo, fo_y)

    def warped_optical(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The optical image resampled onto this level's SAR grid through ``matrix`` (full-res opt -> SAR)."""
        img, val, o_to_arr = self._optical(matrix)
        m = self.to_level @ matrix @ np.linalg.inv(o_to_arr)
        return warp_onto(img, val, m, self.shape)

    def match(
        self, matrix: np.ndarray, radius: int, max_points: int | None = None, points: np.ndarray | None = None
    ) -> PassResult:
        """Match candidates picked on this level (or given ones), around the transform ``matrix``.

        Args:
            matrix: current 3x3 full-resolution optical -> SAR matrix.
            radius: search radius in this level's pixels.
            max_points: candidate cap (default ``config.max_points``).
            points: ``(N, 2)`` full-resolution SAR template centres to use instead of picking candidates.

        Returns:
            The :class:`PassResult`.
        """
        cfg = self.config
        key = np.asarray(matrix, dtype=np.float64).tobytes()
        last = self._last  # read once: matchers may be shared between threads
        if last is not None and last[0] == key:
            wimg, wvalid, ofeat, ofvalid = last[1]
        else:
            wimg, wvalid = self.warped_optical(matrix)
            ofeat, ofvalid = structural_features(
                wimg, wvalid, "gaussian", cfg.opt_sigma, cfg.n_orientations, cfg.channel_sigma
            )
            self._last = (key, (wimg, wvalid, ofeat, ofvalid))
        both = wvalid & self.sar_valid
        n_max = max_points or cfg.max_points
        area = float(both.sum())
        spacing = max(cfg.min_spacing, int(np.sqrt(max(area, 1.0) / n_max)))
        if points is None:
            pts, texture = select_candidates(wimg, wvalid, self.sar_valid, cfg.template_size, spacing, n_max)
        else:
            pts = np.rint(_apply(self.to_level, points)).astype(np.int64)
            texture = float("nan")
        params = MatchParams(
            template_size=cfg.template_size, search_radius=int(radius), threads=thread_count(cfg.threads)
        )
        if self._sar_var is None:
            self._sar_var = window_variance(self.sar_feat, cfg.template_size)
        res = match_points(ofeat, ofvalid, self.sar_feat, self.sar_fvalid, pts, params, self._sar_var)
        from_level = np.linalg.inv(self.to_level)
        sar_xy = _apply(from_level, pts + np.nan_to_num(res.offset))
        opt_xy = _apply(np.linalg.inv(matrix), _apply(from_level, pts))
        return PassResult(
            sar_xy=sar_xy,
            opt_xy=opt_xy,
            reliability=res.reliability,
            usable=res.usable,
            peak=res.peak,
            n_candidates=len(pts),
            centres=_apply(from_level, pts),
            texture=texture,
        )


def match_chips(
    sar: Source,
    opt: Source,
    matrix: np.ndarray,
    points_sar: np.ndarray,
    radius: int,
    config: AutoConfig,
    strip: int = 512,
) -> PassResult:
    """Full-resolution matching in small chips around given SAR points (for scenes too big for memory).

    Points are processed in horizontal strips of the SAR image: each strip's SAR rows and the optical window
    that covers them are read once, then every chip in the strip is cut, the optical warped onto it, and both
    turned into features. Memory stays at a few strips; reads are a few per strip instead of two per point.

    Args:
        sar: SAR source.
        opt: optical source.
        matrix: 3x3 full-resolution optical -> SAR matrix (affine or projective).
        points_sar: ``(N, 2)`` SAR template centres (rounded to pixels).
        radius: search radius in pixels.
        config: settings.
        strip: strip height in SAR pixels (plus the chip size).

    Returns:
        The :class:`PassResult`, in the order of ``points_sar``.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; full-resolution pixels.
    """
    from saropt.registration.transforms import AffineTransform, ProjectiveTransform
    from saropt.registration.warp import optical_window_for, warp_array

    t, r = config.template_size, int(radius)
    margin = int(np.ceil(2.0 * config.sar_sigma + 2.0 * config.channel_sigma)) + 3
    half = t // 2
    size = t + 2 * r + 2 * margin
    pts = np.rint(np.asarray(points_sar, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    n = len(pts)
    tr = AffineTransform(matrix) if np.allclose(matrix[2], [0, 0, 1]) else ProjectiveTransform(matrix)
    c = config.n_orientations
    temps = np.zeros((n, c, t, t), np.float32)
    wins = np.zeros((n, c, t + 2 * r, t + 2 * r), np.float32)
    ok = np.zeros(n, bool)
    lo = half + r + margin
    order = np.argsort(pts[:, 1], kind="stable")
    k = 0
    while k < n:
        y_start = int(pts[order[k], 1])
        members = [i for i in order[k:] if pts[i, 1] < y_start + strip]
        k += len(members)
        ys = pts[members, 1]
        xs = pts[members, 0]
        swin = Window(
            int(xs.min()) - lo,
            int(ys.min()) - lo,
            int(xs.max() - xs.min()) + size,
            int(ys.max() - ys.min()) + size,
        )
        s_img, s_val = sar.read(swin)
        owin = optical_window_for(tr, swin, margin=3)
        o_img, o_val = opt.read(owin) if owin.width > 0 and owin.height > 0 else (None, None)
        for i in members:
            x, y = int(pts[i, 0]), int(pts[i, 1])
            cw = Window(x - lo, y - lo, size, size)
            r0, c0 = cw.row_off - swin.row_off, cw.col_off - swin.col_off
            simg = s_img[r0 : r0 + size, c0 : c0 + size]
            sval = s_val[r0 : r0 + size, c0 : c0 + size]
            if o_img is None or sval.mean() < 0.5:
                continue
            data, wval = warp_array(o_img[None], o_val, tr, cw, src_origin=(owin.col_off, owin.row_off))
            sf, sfv = structural_features(
                simg, sval, config.sar_operator, config.sar_sigma, config.n_orientations, config.channel_sigma
            )
            of, ofv = structural_features(
                data[0], wval, "gaussian", config.opt_sigma, config.n_orientations, config.channel_sigma
            )
            c0t = margin + r
            if ofv[c0t : c0t + t, c0t : c0t + t].mean() < 0.6:
                continue
            if sfv[margin : margin + t + 2 * r, margin : margin + t + 2 * r].mean() < 0.6:
                continue
            temps[i] = of[:, c0t : c0t + t, c0t : c0t + t]
            wins[i] = sf[:, margin : margin + t + 2 * r, margin : margin + t + 2 * r]
            ok[i] = True
    params = MatchParams(template_size=t, search_radius=r, threads=thread_count(config.threads))
    idx = np.flatnonzero(ok)
    res = _result(match_stacks(temps[idx], wins[idx], params), ok)
    sar_xy = pts + np.nan_to_num(res.offset)
    opt_xy = _apply(np.linalg.inv(matrix), pts.astype(np.float64))
    return PassResult(
        sar_xy=sar_xy.astype(np.float64),
        opt_xy=opt_xy,
        reliability=res.reliability,
        usable=res.usable,
        peak=res.peak,
        n_candidates=n,
        centres=pts.astype(np.float64),
        texture=0.0,
    )


__all__ = ["LevelMatcher", "PassResult", "match_chips", "transform_scale", "warp_onto"]
