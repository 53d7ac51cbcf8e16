"""Small generated scene pairs for the build tests (fast: a few hundred pixels, written with rasterio)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """A structured ``(h, w)`` float image in [0, 1]: multi-scale smooth noise plus bright blocks and roads."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for sigma, amp in ((24.0, 1.0), (8.0, 0.6), (3.0, 0.3)):
        n = rng.standard_normal((h, w)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigma)
        img += amp * n / (n.std() + 1e-6)
    for _ in range(max(4, h * w // 4000)):
        y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        bh, bw = int(rng.integers(4, 14)), int(rng.integers(4, 14))
        img[y : y + bh, x : x + bw] += 3.0
    for _ in range(3):
        y = int(rng.integers(0, h))
        img[max(0, y - 2) : y + 2, :] -= 2.0
    img -= img.min()
    return img / img.max()


def write_raster(
    path: Path, data: np.ndarray, crs: str | None = None, transform: Any = None, nodata: Any = None
) -> Path:
    """Write ``(C, h, w)`` or ``(h, w)`` data as a GeoTIFF (or plain TIFF without crs/transform)."""
    import rasterio
    from rasterio.transform import Affine

    a = data if data.ndim == 3 else data[None]
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": a.shape[2],
        "height": a.shape[1],
        "count": a.shape[0],
        "dtype": a.dtype.name,
    }
    if crs is not None:
        profile["crs"] = crs
        profile["transform"] = (
            transform if transform is not None else Affine(1.0, 0, 500000.0, 0, -1.0, 4600000.0)
        )
    if nodata is not None:
        profile["nodata"] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(a)
    return path


def make_pair(
    folder: Path,
    size: int = 320,
    shift: tuple[int, int] = (0, 0),
    seed: int = 0,
    name: str = "pair",
    georef: bool = False,
    opt_crs: str | None = None,
    opt_origin: tuple[float, float] | None = None,
    opt_bands: int = 3,
) -> tuple[Path, Path]:
    """A SAR (uint16 amplitude with speckle) and an optical image (uint8) of the same textured ground.

    Optical pixel ``(x, y)`` shows the ground of SAR pixel ``(x + shift[0], y + shift[1])``.
    With ``georef`` both get 1 m UTM geotransforms consistent with the shift (optical origin overridable).
    """
    from rasterio.transform import Affine

    dx, dy = shift
    pad = max(abs(dx), abs(dy)) + 2
    ground = textured(size + 2 * pad, size + 2 * pad, seed)
    rng = np.random.default_rng(seed + 1)
    sar_ground = ground[pad : pad + size, pad : pad + size]
    speckle = rng.gamma(4.0, 1 / 4.0, sar_ground.shape)
    sar = (np.sqrt(speckle) * (50 + 900 * sar_ground**1.5)).astype(np.uint16)
    opt_ground = ground[pad + dy : pad + dy + size, pad + dx : pad + dx + size]
    grey = (20 + 220 * opt_ground).astype(np.uint8)
    opt = np.stack([grey, (grey * 0.9).astype(np.uint8), (grey * 0.8).astype(np.uint8)])[:opt_bands]
    sar_crs = "EPSG:32615" if georef else None
    sar_tf = Affine(1.0, 0, 500000.0, 0, -1.0, 4600000.0) if georef else None
    ocrs = opt_crs if opt_crs is not None else sar_crs
    if georef:
        ox, oy = opt_origin if opt_origin is not None else (500000.0 + dx, 4600000.0 - dy)
        opt_tf = Affine(1.0, 0, ox, 0, -1.0, oy)
    else:
        opt_tf = None
    sar_path = write_raster(folder / f"{name}_sar.tif", sar, sar_crs, sar_tf)
    opt_path = write_raster(folder / f"{name}_opt.tif", opt, ocrs if georef else None, opt_tf)
    return sar_path, opt_path


def grid_tiepoints(
    size: int, shift: tuple[int, int], n: int = 5, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """``(n*n, 4)`` rows ``x_sar, y_sar, x_opt, y_opt`` for a pure shift (optical + shift = SAR)."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(20, size - 20 - max(0, shift[0]), n)
    ys = np.linspace(20, size - 20 - max(0, shift[1]), n)
    gx, gy = np.meshgrid(xs, ys)
    opt = np.stack([gx.ravel(), gy.ravel()], 1)
    sar = opt + np.asarray(shift, float) + rng.normal(0, noise, opt.shape)
    return np.hstack([sar, opt])


def write_csv(path: Path, rows: np.ndarray) -> Path:
    """Tie points as saropt CSV (``x_sar,y_sar,x_opt,y_opt``)."""
    lines = ["x_sar,y_sar,x_opt,y_opt"] + [",".join(f"{v:.4f}" for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def tree_hashes(root: Path, exclude: tuple[str, ...] = (".log",)) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative POSIX path -> hex), logs excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.endswith(exclude):
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
