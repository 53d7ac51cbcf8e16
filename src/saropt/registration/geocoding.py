"""Geocoding tie points: relate a georeferenced SAR scene and optical scene through their coordinate systems.

A regular grid of SAR pixels is taken to SAR map coordinates (the SAR geotransform), reprojected into the
optical CRS (``rasterio.warp.transform``, i.e. PROJ) and taken to optical pixels (the optical geotransform).
The points that land inside the optical image become tie points (``source="geocoding"``, score 1), and a
transform model fitted to them approximates the exact CRS mapping; its residuals are that approximation's
error (0 up to rounding for two scenes in the same CRS, whose mapping is affine).

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates (the scenes'
    corner-based geotransforms are converted by :class:`~saropt.io.raster.Scene`). Map coordinates are in each
    scene's CRS units, ``(X, Y)`` = (easting or longitude, northing or latitude) as rasterio orders them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from saropt.errors import CRSMismatchError, InputError, NoOverlapError
from saropt.io.tiepoints import TiePoints
from saropt.io.windows import Window

if TYPE_CHECKING:  # pragma: no cover
    from saropt.io.raster import Scene
    from saropt.registration.fit import Registration

logger = logging.getLogger(__name__)


def geocoding_tiepoints(sar: Scene, opt: Scene, region: Window | None = None, grid: int = 16) -> TiePoints:
    """Tie points from georeferencing: a ``grid x grid`` lattice of SAR pixels mapped into the optical image.

    Args:
        sar: georeferenced SAR scene.
        opt: georeferenced optical scene.
        region: SAR pixel window to cover (default: the whole SAR scene); clipped to the scene.
        grid: points per side (>= 2), spread from the region's first to its last pixel centre.

    Returns:
        :class:`TiePoints` (``source="geocoding"``, score 1) for the grid points that land inside the optical
        image (its outer pixel edges).

    Raises:
        CRSMismatchError: either scene is not georeferenced, or the CRSs cannot be related.
        NoOverlapError: the region lies outside the SAR scene, or no grid point lands inside the optical image
            (the message gives both footprints in the optical CRS).
        InputError: ``grid < 2``.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers, in each scene's own pixel grid.
    """
    if grid < 2:
        raise InputError(f"grid must be >= 2 points per side, got {grid}")
    for scene, role in ((sar, "SAR"), (opt, "optical")):
        if not scene.georeferenced:
            raise CRSMismatchError(
                f"the {role} scene {scene.path} is not georeferenced (no CRS or geotransform): geocoding needs "
                "both; give tie points (CSV, QGIS .points, GCPs) or use the identity for pre-aligned pairs"
            )
    full = Window(0, 0, sar.width, sar.height)
    win = full if region is None else region.intersection(full)
    if win is None:
        raise NoOverlapError(f"region {region} lies outside the SAR scene ({sar.width}x{sar.height} px)")

    xs = np.linspace(win.col_off, win.col_end - 1, grid)
    ys = np.linspace(win.row_off, win.row_end - 1, grid)
    gx, gy = np.meshgrid(xs, ys)
    sar_xy = np.column_stack([gx.ravel(), gy.ravel()])
    map_xy = _reproject(sar.pixel_to_map(sar_xy), sar.crs, opt.crs)  # type: ignore[arg-type]
    opt_xy = opt.map_to_pixel(np.where(np.isfinite(map_xy), map_xy, 0.0))
    ok = np.isfinite(map_xy).all(axis=1)
    ok &= (opt_xy[:, 0] >= -0.5) & (opt_xy[:, 0] <= opt.width - 0.5)
    ok &= (opt_xy[:, 1] >= -0.5) & (opt_xy[:, 1] <= opt.height - 0.5)
    if not ok.any():
        raise NoOverlapError(
            f"the SAR scene {sar.name} (region {win.col_off},{win.row_off} {win.width}x{win.height} px) and the "
            f"optical scene {opt.name} do not overlap: {_footprints(sar, opt, win)}"
        )
    logger.info("geocoding: %d of %d grid points land inside the optical image", int(ok.sum()), len(ok))
    return TiePoints(
        sar_xy[ok],
        opt_xy[ok],
        score=np.ones(int(ok.sum())),
        source="geocoding",
        meta={"grid": int(grid), "region": win.to_dict()},
    )


def geocoding_registration(
    sar: Scene, opt: Scene, region: Window | None = None, model: str = "projective", grid: int = 16
) -> Registration:
    """Registration from georeferencing alone: ``model`` fitted (without outlier rejection) to geocoding points.

    Args:
        sar: georeferenced SAR scene.
        opt: georeferenced optical scene.
        region: SAR pixel window (default: the whole scene).
        model: transform model (``"projective"`` approximates a change of projection well over a scene;
            ``"affine"`` is exact for two scenes in the same CRS; ``"tps"`` follows any smooth mapping).
        grid: points per side of the tie-point lattice.

    Returns:
        A :class:`~saropt.registration.fit.Registration` with ``method="geocoding"``; ``rmse_px`` is the model's
        approximation error against the exact CRS mapping at the grid points, and ``meta["check_rmse_px"]`` /
        ``meta["check_max_px"]`` the same at the lattice cell centres (points not used in the fit).

    Raises:
        CRSMismatchError, NoOverlapError: as :func:`geocoding_tiepoints`.
        TiePointError: too few overlapping grid points for the model.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; the transform maps optical -> SAR pixels.
    """
    from dataclasses import replace

    from saropt.registration.fit import fit_registration

    tp = geocoding_tiepoints(sar, opt, region, grid)
    reg = fit_registration(tp, model, robust=False, method="geocoding")
    check = _check_error(sar, opt, reg, tp.meta["region"], grid)
    return replace(reg, meta={**reg.meta, **check, "grid": int(grid)})


# ------------------------------------------------------------------------------------------------- internals


def _crs(wkt: str, what: str) -> Any:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(wkt)
    except (CRSError, ValueError, TypeError) as exc:
        raise CRSMismatchError(f"cannot interpret the {what} CRS: {exc}") from exc


def _reproject(xy: np.ndarray, src_wkt: str, dst_wkt: str) -> np.ndarray:
    """Map coordinates from one CRS to another (NaN where PROJ cannot transform a point)."""
    src, dst = _crs(src_wkt, "SAR"), _crs(dst_wkt, "optical")
    if src == dst:
        return xy.copy()
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    try:
        x, y = transform(src, dst, xy[:, 0].tolist(), xy[:, 1].tolist())
    except (CRSError, ValueError, RuntimeError) as exc:
        raise CRSMismatchError(
            f"cannot transform coordinates from the SAR CRS to the optical CRS ({exc}); check both CRSs"
        ) from exc
    out = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def _footprints(sar: Scene, opt: Scene, win: Window) -> str:
    """Both footprints as ``(minx, miny, maxx, maxy)`` in the optical CRS (best effort)."""
    o = opt.window_bounds(Window(0, 0, opt.width, opt.height))
    s = sar.window_bounds(win)
    try:
        from rasterio.warp import transform_bounds

        src, dst = _crs(sar.crs, "SAR"), _crs(opt.crs, "optical")  # type: ignore[arg-type]
        s_opt = s if src == dst else transform_bounds(src, dst, *s)  # type: ignore[misc]
        crs_name = dst.to_string() or "optical CRS"
    except Exception:  # noqa: BLE001 - the message is best effort; the error raised is NoOverlapError
        s_opt, crs_name = s, "SAR CRS / optical CRS"
    fmt = lambda b: "(" + ", ".join(f"{v:.6g}" for v in b) + ")"
    return f"SAR footprint {fmt(s_opt)}, optical footprint {fmt(o)} ({crs_name})"


def _check_error(
    sar: Scene, opt: Scene, reg: Registration, region: dict[str, int], grid: int
) -> dict[str, Any]:
    """Model error at the lattice cell centres (independent of the fitted points), in SAR pixels."""
    win = Window(**region)
    xs = np.linspace(win.col_off, win.col_end - 1, grid)
    ys = np.linspace(win.row_off, win.row_end - 1, grid)
    gx, gy = np.meshgrid((xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2)
    sar_xy = np.column_stack([gx.ravel(), gy.ravel()])
    map_xy = _reproject(sar.pixel_to_map(sar_xy), sar.crs, opt.crs)  # type: ignore[arg-type]
    ok = np.isfinite(map_xy).all(axis=1)
    opt_xy = opt.map_to_pixel(map_xy[ok])
    inside = (
        (opt_xy[:, 0] >= -0.5)
        & (opt_xy[:, 0] <= opt.width - 0.5)
        & (opt_xy[:, 1] >= -0.5)
        & (opt_xy[:, 1] <= opt.height - 0.5)
    )
    if not inside.any():
        return {"check_rmse_px": None, "check_max_px": None}
    err = np.sqrt(((reg.transform.forward(opt_xy[inside]) - sar_xy[ok][inside]) ** 2).sum(axis=1))
    return {"check_rmse_px": float(np.sqrt(np.mean(err**2))), "check_max_px": float(err.max())}
