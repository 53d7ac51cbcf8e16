"""Outputs of an automatic registration: RESULT.json, tie-point files and the overview picture.

:func:`register_files` is what ``saropt register`` runs: open both images, register, write the result (and,
on request, the tie points and an overview) atomically.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates; ``optical_to_sar`` maps
    optical pixels to SAR pixels.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.registration.auto.config import AutoConfig
from saropt.registration.auto.sources import Source, make_source

logger = logging.getLogger(__name__)

PRIORS = ("geocoding", "none")


def result_dict(
    reg: Any, *, seconds: float, sar: str | None = None, optical: str | None = None
) -> dict[str, Any]:
    """The RESULT.json content of a registration.

    Args:
        reg: the :class:`~saropt.registration.fit.Registration`.
        seconds: wall time of the registration.
        sar: SAR input path (recorded).
        optical: optical input path (recorded).

    Returns:
        ``model``, ``optical_to_sar`` (3x3 list for linear models, else ``None``), ``transform``, ``rmse_px``,
        ``loo_rmse_px``, ``n_tiepoints``, ``n_reliable``, ``n_inliers``, ``seconds``, ``inputs``, ``meta`` and
        ``tiepoints`` (each with ``x_sar, y_sar, x_opt, y_opt, score, reliable, inlier, residual_px``).

    Convention:
        Pixel coordinates x = column, y = row, 0-based, pixel centres at integers.
    """
    d = reg.to_dict()
    min_rel = float(reg.meta.get("min_reliability", 0.5))
    points = d.pop("points")
    for p in points:
        p["reliable"] = p["score"] is not None and p["score"] >= min_rel
    return {
        "model": d["model"],
        "method": d["method"],
        "optical_to_sar": d["optical_to_sar"],
        "transform": d["transform"],
        "rmse_px": d["rmse_px"],
        "loo_rmse_px": d["loo_rmse_px"],
        "n_tiepoints": d["n_points"],
        "n_reliable": int(reg.meta.get("n_reliable", sum(p["reliable"] for p in points))),
        "n_inliers": d["n_inliers"],
        "seconds": round(float(seconds), 3),
        "inputs": {"sar": sar, "optical": optical},
        "convention": "pixel x=column, y=row, 0-based, pixel centres at integers; optical_to_sar maps optical "
        "pixels to SAR pixels",
        "meta": _jsonable(d["meta"]),
        "tiepoints": points,
    }


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, (np.bool_,)):
        return bool(o)
    return o


def write_json(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    from saropt.io.images import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def _to_u8(img: np.ndarray, valid: np.ndarray, log: bool) -> np.ndarray:
    """Percentile stretch (1 - 99.5 %) of the valid pixels to 8 bits; ``log`` first for SAR amplitudes that are
    not already 8-bit display values."""
    v = img[valid]
    if v.size == 0:
        return np.zeros(img.shape, np.uint8)
    eight_bit = float(v.min()) >= 0.0 and float(v.max()) <= 255.0 and bool(np.all(v == np.round(v)))
    if log and not eight_bit:
        med = float(np.median(v[v > 0])) if (v > 0).any() else 1.0
        x = np.log(np.maximum(img, 0.0) + 0.05 * med)
    else:
        x = img
    lo, hi = np.percentile(x[valid], [1.0, 99.5])
    if not hi > lo:
        hi = lo + 1.0
    out = np.clip((x - lo) / (hi - lo) * 255.0, 0, 255)
    out[~valid] = 0
    return out.astype(np.uint8)


def overview_arrays(
    sar: Source, opt: Source, transform: Any, max_size: int = 2048
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """SAR (8-bit) and the optical warped onto it by ``transform``, at most ``max_size`` pixels a side.

    Returns:
        ``(sar_u8, opt_u8, fx, fy)``: the two ``(h, w)`` images and the decimation factors of the SAR grid.

    Convention:
        The overview grid is the SAR grid decimated by ``(fx, fy)`` (``cv2.resize`` convention).
    """
    f = max(1.0, max(sar.width, sar.height) / max_size)
    simg, sval = sar.read_level(sar.window, f)
    h, w = simg.shape
    fx, fy = sar.width / w, sar.height / h
    fo = max(1.0, f / max(_scale(transform), 1e-9))
    oimg, oval = opt.read_level(opt.window, fo)
    ofx, ofy = opt.width / oimg.shape[1], opt.height / oimg.shape[0]
    # sample positions: overview pixel -> full SAR -> full optical (inverse) -> decimated optical
    step = 8
    ys = np.arange(0, h + step, step, dtype=np.float64)
    xs = np.arange(0, w + step, step, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys)
    full = np.stack([(gx.ravel() + 0.5) * fx - 0.5, (gy.ravel() + 0.5) * fy - 0.5], axis=1)
    q = np.asarray(transform.inverse(full), dtype=np.float64)
    qx = ((q[:, 0] + 0.5) / ofx - 0.5).reshape(gx.shape).astype(np.float32)
    qy = ((q[:, 1] + 0.5) / ofy - 0.5).reshape(gx.shape).astype(np.float32)
    mx = _lattice_resize(qx, step, h, w)
    my = _lattice_resize(qy, step, h, w)
    warped = cv2.remap(np.where(oval, oimg, 0).astype(np.float32), mx, my, cv2.INTER_LINEAR, borderValue=0.0)
    wval = cv2.remap(oval.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderValue=0.0) > 0.999
    sar_u8 = _to_u8(simg, sval, log=True)
    opt_u8 = _to_u8(warped, wval, log=False)
    return sar_u8, opt_u8, fx, fy


def _lattice_resize(a: np.ndarray, step: int, h: int, w: int) -> np.ndarray:
    """Bilinear interpolation of lattice values (node ``k`` at pixel ``k * step``) to every pixel."""
    ys = np.arange(h, dtype=np.float32) / step
    xs = np.arange(w, dtype=np.float32) / step
    mx, my = np.meshgrid(xs, ys)
    return cv2.remap(a, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _scale(transform: Any) -> float:
    m = getattr(transform, "matrix", None)
    if m is None:
        return 1.0
    return float(np.sqrt(abs(np.linalg.det(np.asarray(m)[:2, :2]))))


def write_overview(
    path: str | os.PathLike[str], sar: Source, opt: Source, reg: Any, title: str, min_size: int = 768
) -> None:
    """Checkerboard of the SAR and the warped optical, tie points coloured by residual, as PNG (atomic).

    Only reliable tie points are drawn (RANSAC outliers among them as crosses); small images are enlarged to
    ``min_size`` so that the points stay readable.

    Raises:
        InputError: the path does not end in ``.png``.
    """
    from saropt.viz.overview import overview_image, save_png

    sar_u8, opt_u8, fx, fy = overview_arrays(sar, opt, reg.transform)
    up = max(1, math.ceil(min_size / max(sar_u8.shape)))
    if up > 1:
        size = (sar_u8.shape[1] * up, sar_u8.shape[0] * up)
        sar_u8 = cv2.resize(sar_u8, size, interpolation=cv2.INTER_NEAREST)
        opt_u8 = cv2.resize(opt_u8, size, interpolation=cv2.INTER_LINEAR)
        fx, fy = fx / up, fy / up
    tp = reg.tiepoints
    min_rel = float(reg.meta.get("min_reliability", 0.5))
    show = np.ones(len(tp), bool) if tp.score is None else tp.score >= min_rel
    pts = np.stack([(tp.sar_xy[:, 0] + 0.5) / fx - 0.5, (tp.sar_xy[:, 1] + 0.5) / fy - 0.5], axis=1)
    tile = max(16, round(min(sar_u8.shape) / 8))
    img = overview_image(
        sar_u8,
        opt_u8,
        tile=tile,
        tiepoints_xy=pts[show],
        residuals=reg.residuals[show],
        inliers=reg.inliers[show],
        title=title,
        max_size=2048,
    )
    save_png(path, img)


def open_input(path: str | os.PathLike[str], role: str, nodata: float | None) -> Any:
    """Open an input image for registration as a :class:`~saropt.io.raster.Scene`.

    Raises:
        RasterReadError, BandLayoutError: as :func:`~saropt.io.raster.open_scene`.
    """
    from saropt.io.raster import open_scene

    return open_scene(path, role, nodata=nodata)


def register_files(
    sar_path: str | os.PathLike[str],
    optical_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "affine",
    tiepoints_out: str | os.PathLike[str] | None = None,
    overview: str | os.PathLike[str] | None = None,
    prior: str = "geocoding",
    region: Window | None = None,
    nodata: float | None = None,
    config: AutoConfig | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Register two image files and write RESULT.json (plus tie points and overview on request).

    Args:
        sar_path: SAR raster (GeoTIFF, TIFF, PNG, JPEG...).
        optical_path: optical raster.
        out: RESULT.json path.
        model: transform model.
        tiepoints_out: write the tie points here too (``.csv`` or QGIS ``.points``, by extension).
        overview: write an overview PNG here (default: ``<out stem>_overview.png`` beside ``out``; ``""``
            disables it).
        prior: ``"geocoding"`` (use georeferencing when both images have it) or ``"none"``.
        region: SAR window to register.
        nodata: nodata value for both inputs (default: the files' own; border fill of 0 is detected in small
            images without one).
        config: settings.

    Returns:
        ``(registration, result_dict)``.

    Raises:
        InputError: unknown prior or model, output paths with unsupported extensions.
        RegistrationError, NoOverlapError: as :func:`~saropt.registration.auto.register`.
    """
    from dataclasses import replace

    from saropt.io.tiepoints import write_tiepoints
    from saropt.registration.auto.pipeline import register

    if prior not in PRIORS:
        raise InputError(f"--prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise InputError(f"the result file must end in .json, got {out.name}")
    if tiepoints_out is not None and Path(tiepoints_out).suffix.lower() not in (".csv", ".points"):
        raise InputError(f"--tiepoints-out must end in .csv or .points, got {Path(tiepoints_out).name}")
    if overview is None:
        overview = out.with_name(out.stem + "_overview.png")
    elif overview != "" and Path(overview).suffix.lower() != ".png":
        raise InputError(f"--overview must end in .png, got {Path(overview).name}")
    config = config or AutoConfig()
    config = replace(config, use_geocoding=(prior == "geocoding"))
    t0 = time.perf_counter()
    sar = open_input(sar_path, "sar", nodata)
    opt = open_input(optical_path, "optical", nodata)
    reg = register(sar, opt, model=model, region=region, config=config)
    seconds = time.perf_counter() - t0
    result = result_dict(reg, seconds=seconds, sar=str(sar_path), optical=str(optical_path))
    write_json(out, result)
    if tiepoints_out is not None:
        from saropt.io.raster import Scene

        write_tiepoints(
            reg.tiepoints.subset(reg.inliers),
            tiepoints_out,
            sar=sar if isinstance(sar, Scene) else None,
            opt=opt if isinstance(opt, Scene) else None,
        )
    if overview:
        s_src = make_source(sar, "sar", config.array_nodata, config.max_level_pixels)
        o_src = make_source(opt, "optical", config.array_nodata, config.max_level_pixels)
        title = (
            f"{Path(optical_path).name} -> {Path(sar_path).name}: {reg.model}, {reg.n_inliers} inliers of "
            f"{int(reg.meta.get('n_reliable', len(reg.tiepoints)))} reliable, RMSE {reg.rmse_px:.2f} px, "
            f"LOO {reg.loo_rmse_px:.2f} px"
        )
        write_overview(overview, s_src, o_src, reg, title)
        result["overview"] = str(overview)
    return reg, result


__all__ = ["open_input", "overview_arrays", "register_files", "result_dict", "write_json", "write_overview"]
