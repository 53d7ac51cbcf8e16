"""saropt.io on the real scenes in ../shared/data/scenes (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from saropt.io import OpticalMapping, SarMapping, Window, open_scene, read_tiepoints

# folder, file, role, (width, height), count, dtype, georeferenced
SCENES = [
    ("omaha-gf3-worldview", "GF3_*.tiff", "sar", (1388, 1385), 1, "uint16", True),
    ("omaha-gf3-worldview", "18APR24*.tiff", "optical", (1092, 1092), 1, "uint16", True),
    ("airfield-unaligned", "t1.tif", "sar", (900, 795), 1, "uint8", False),
    ("airfield-unaligned", "t2.tif", "optical", (923, 704), 1, "uint8", False),
    ("cfog-urban", "SAR_sen.png", "sar", (534, 513), 1, "uint8", False),
    ("cfog-urban", "optical_ref.png", "optical", (528, 520), 3, "uint8", False),
    ("cfog-rural", "SAR1_sen.tif", "sar", (600, 600), 1, "uint8", False),
    ("cfog-rural", "visible1_ref.tif", "optical", (600, 600), 1, "uint8", False),
]

CHECKPOINTS = [
    ("cfog-urban", "OpticaltoSAR_CP.txt", 294),
    ("cfog-rural", "visibleToSAR1_CP.txt", 145),
]


def one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}"
    return found[0]


@pytest.mark.parametrize("folder,pattern,role,size,count,dtype,geo", SCENES, ids=[s[1] for s in SCENES])
def test_open_every_scene(shared_data: Path, folder, pattern, role, size, count, dtype, geo) -> None:
    scene = open_scene(one(shared_data / "scenes" / folder, pattern), role)
    assert (scene.width, scene.height) == size
    assert (scene.count, scene.dtype, scene.georeferenced) == (count, dtype, geo)
    data, valid, factor = scene.read_decimated(256)
    assert max(data.shape[1:]) == 256 and factor == pytest.approx(max(size) / 256)
    if role == "sar" and dtype == "uint16":
        # GF-3 fills the area outside its footprint with amplitude 0 (about 26% here): read as nodata.
        assert scene.nodata == 0 and 0.65 < valid.mean() < 0.85
        assert data[0][valid].std() > 1.0
        win = Window(600, 600, 64, 64)  # inside the footprint
        expected_valid = 64 * 64
    else:
        assert valid.all() and data.std() > 1.0  # real image content, no declared nodata
        win = Window(-8, -8, 64, 64)
        expected_valid = 56 * 56
    patch, pvalid = scene.read(win)
    assert patch.shape == (count, 64, 64) and pvalid.sum() >= expected_valid - 8
    assert pvalid.sum() <= expected_valid
    if geo:
        assert CRS.from_wkt(scene.crs) == CRS.from_epsg(4326)
    mapping = (SarMapping() if role == "sar" else OpticalMapping()).resolve(scene)
    out = mapping.apply(patch if role == "optical" else patch[0], pvalid)
    assert out.dtype == np.uint8 and (out[~pvalid] == 0).all()


def test_omaha_footprints_overlap_and_mapping(shared_data: Path) -> None:
    folder = shared_data / "scenes" / "omaha-gf3-worldview"
    sar = open_scene(one(folder, "GF3_*.tiff"), "sar", nodata=0)
    opt = open_scene(one(folder, "18APR24*.tiff"), "optical", nodata=0)
    sb, ob = sar.window_bounds(sar.window), opt.window_bounds(opt.window)
    # the optical footprint lies inside the SAR footprint (README), in EPSG:4326
    assert sb[0] < ob[0] < ob[2] < sb[2] and sb[1] < ob[1] < ob[3] < sb[3]
    # the same ground point seen from both grids: optical centre -> SAR pixels lies inside the SAR image
    centre = opt.pixel_to_map(np.array([[(opt.width - 1) / 2, (opt.height - 1) / 2]]))
    x, y = sar.map_to_pixel(centre)[0]
    assert 0 < x < sar.width and 0 < y < sar.height
    # both files are zero-filled outside the footprint without declaring nodata: nodata=0 excludes it
    _, sv, _ = sar.read_decimated(512)
    assert 0.15 < 1 - sv.mean() < 0.35
    m = SarMapping().resolve(sar)
    assert m.kind == "amplitude" and 0 < m.db_min < 20 < m.db_max < 60 and m.db_max - m.db_min > 20
    o = OpticalMapping().resolve(opt)
    assert o.kind == "percentile" and 50 < o.lows[0] < o.highs[0] < 2100


def _affine_rmse(sar_xy: np.ndarray, opt_xy: np.ndarray) -> tuple[float, np.ndarray]:
    x = np.column_stack([opt_xy, np.ones(len(opt_xy))])
    coef, *_ = np.linalg.lstsq(x, sar_xy, rcond=None)
    r = sar_xy - x @ coef
    return float(np.sqrt((r**2).sum(axis=1).mean())), coef.T


@pytest.mark.parametrize("folder,name,rows", CHECKPOINTS)
def test_cfog_checkpoints_fit_an_affine(shared_data: Path, folder: str, name: str, rows: int) -> None:
    path = shared_data / "scenes" / folder / name
    tp1 = read_tiepoints(path, origin=1)
    assert len(tp1) == rows and tp1.source == "checkpoints"
    rmse, m = _affine_rmse(tp1.sar_xy, tp1.opt_xy)
    assert 0.5 < rmse < 1.5  # README: ~0.8-0.9 px on urban
    tp0 = read_tiepoints(path)
    rmse0, m0 = _affine_rmse(tp0.sar_xy, tp0.opt_xy)
    assert rmse0 == pytest.approx(rmse, abs=1e-9)
    # 0- vs 1-based changes the fitted optical->SAR mapping by (I - A)(1, 1) only
    pts = tp0.opt_xy
    pred0 = np.column_stack([pts, np.ones(len(pts))]) @ m0.T
    pred1 = np.column_stack([pts - 1, np.ones(len(pts))]) @ m.T + 1
    assert np.abs(pred0 - pred1).max() < 0.02


def test_cfog_rural_points_share_one_origin(shared_data: Path) -> None:
    """Warping the optical gradient with the points' affine fits the SAR best when ref and sen share an origin."""
    import cv2

    folder = shared_data / "scenes" / "cfog-rural"
    opt = open_scene(folder / "visible1_ref.tif", "optical")
    sar = open_scene(folder / "SAR1_sen.tif", "sar")
    tp = read_tiepoints(folder / "visibleToSAR1_CP.txt", origin=1)

    def grad(img: np.ndarray) -> np.ndarray:
        g = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    go, gs = grad(opt.read(opt.window)[0][0]), grad(sar.read(sar.window)[0][0])

    def ncc(ref_shift: float, sen_shift: float) -> float:
        _, m = _affine_rmse(tp.sar_xy + sen_shift, tp.opt_xy + ref_shift)
        w = cv2.warpAffine(go, m, (sar.width, sar.height), flags=cv2.INTER_LINEAR, borderValue=float("nan"))
        ok = np.isfinite(w)
        ok[:20], ok[-20:], ok[:, :20], ok[:, -20:] = False, False, False, False
        a, b = w[ok] - w[ok].mean(), gs[ok] - gs[ok].mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    same = ncc(0, 0)
    assert same > 0.2
    assert ncc(1, 0) < 0.9 * same and ncc(0, 1) < 0.9 * same  # mixing 0- and 1-based columns is clearly worse
