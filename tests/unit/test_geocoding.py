"""Geocoding tie points and registrations between GeoTIFFs (same CRS, different CRSs, no overlap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform as rio_transform
from rasterio.warp import transform_bounds

from saropt.errors import CRSMismatchError, InputError, NoOverlapError, TiePointError
from saropt.io.raster import open_scene
from saropt.io.windows import Window
from saropt.registration.geocoding import geocoding_registration, geocoding_tiepoints


def _tif(path: Path, w: int, h: int, crs: str | None, transform: Affine | None, bands: int = 1) -> Path:
    profile = {"driver": "GTiff", "width": w, "height": h, "count": bands, "dtype": "uint8"}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((bands, h, w), 100, dtype=np.uint8))
    return path


@pytest.fixture
def utm_sar(tmp_path: Path):
    """1000 x 1000 px SAR scene, 1 m pixels, UTM 15N (like a GF-3 1 m scene)."""
    return open_scene(
        _tif(tmp_path / "sar.tif", 1000, 1000, "EPSG:32615", Affine(1, 0, 500000, 0, -1, 4500000)), "sar"
    )


def test_same_crs_recovers_exact_affine(tmp_path: Path, utm_sar) -> None:
    # optical: 0.75 m pixels, origin offset by a fraction of a pixel, same CRS
    opt = open_scene(
        _tif(
            tmp_path / "opt.tif", 1500, 1450, "EPSG:32615", Affine(0.75, 0, 499880.3, 0, -0.75, 4500090.7), 3
        ),
        "optical",
    )
    reg = geocoding_registration(utm_sar, opt, model="affine")
    # analytic optical -> SAR map: optical pixel centre (u + 0.5, v + 0.5) -> map -> SAR pixel centre
    a = 0.75
    expected = np.array(
        [
            [a, 0.0, (499880.3 - 500000) + 0.5 * a - 0.5],
            [0.0, a, (4500000 - 4500090.7) + 0.5 * a - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(reg.transform.matrix, expected, rtol=0, atol=1e-7)
    assert reg.method == "geocoding" and reg.model == "affine"
    assert reg.rmse_px < 1e-6 and reg.meta["check_max_px"] < 1e-6
    assert reg.tiepoints.source == "geocoding" and (reg.tiepoints.score == 1).all()
    assert reg.inliers.all() and not reg.meta["robust"]


def test_geographic_vs_utm_projective_under_0_05_px(tmp_path: Path, utm_sar) -> None:
    west, _south, _east, north = transform_bounds("EPSG:32615", "EPSG:4326", 500000, 4499000, 501000, 4500000)
    d = 1e-5  # ~0.9 m in longitude at 40.6 N, 1.1 m in latitude
    opt = open_scene(
        _tif(
            tmp_path / "opt.tif",
            1400,
            1100,
            "EPSG:4326",
            Affine(d, 0, west - 0.0015, 0, -d, north + 0.001),
            3,
        ),
        "optical",
    )
    reg = geocoding_registration(utm_sar, opt)  # projective by default
    assert reg.model == "projective"
    assert reg.n_points == 256  # the optical image covers the whole SAR scene
    assert reg.rmse_px < 0.05 and reg.meta["check_rmse_px"] < 0.05
    # independent check: random SAR pixels through PROJ vs the fitted model
    rng = np.random.default_rng(0)
    sar_xy = rng.uniform(0, 999, size=(200, 2))
    lon, lat = rio_transform("EPSG:32615", "EPSG:4326", *utm_sar.pixel_to_map(sar_xy).T.tolist())
    opt_xy = opt.map_to_pixel(np.column_stack([lon, lat]))
    err = np.sqrt(((reg.transform.inverse(sar_xy) - opt_xy) ** 2).sum(axis=1))
    assert err.max() < 0.1
    # a smoother model gets closer still
    assert geocoding_registration(utm_sar, opt, model="polynomial2").rmse_px < reg.rmse_px


def test_region_and_grid(tmp_path: Path, utm_sar) -> None:
    opt = open_scene(
        _tif(tmp_path / "o.tif", 900, 900, "EPSG:32615", Affine(1, 0, 500050, 0, -1, 4499950)), "optical"
    )
    tp = geocoding_tiepoints(utm_sar, opt, region=Window(100, 200, 300, 200), grid=5)
    assert len(tp) == 25
    assert tp.sar_xy[:, 0].min() == 100 and tp.sar_xy[:, 0].max() == 399
    assert tp.sar_xy[:, 1].min() == 200 and tp.sar_xy[:, 1].max() == 399
    np.testing.assert_allclose(tp.opt_xy, tp.sar_xy - [50, 50], atol=1e-9)
    assert tp.meta["region"] == {"col_off": 100, "row_off": 200, "width": 300, "height": 200}
    with pytest.raises(InputError, match="grid"):
        geocoding_tiepoints(utm_sar, opt, grid=1)
    with pytest.raises(NoOverlapError, match="outside the SAR scene"):
        geocoding_tiepoints(utm_sar, opt, region=Window(5000, 5000, 10, 10))


def test_partial_overlap_keeps_points_inside(tmp_path: Path, utm_sar) -> None:
    # the optical image covers only the right half of the SAR scene
    opt = open_scene(
        _tif(tmp_path / "o.tif", 500, 1000, "EPSG:32615", Affine(1, 0, 500500, 0, -1, 4500000)), "optical"
    )
    tp = geocoding_tiepoints(utm_sar, opt, grid=16)
    assert 0 < len(tp) < 256
    assert (tp.opt_xy[:, 0] >= -0.5).all() and (tp.opt_xy[:, 0] <= 499.5).all()
    assert (tp.sar_xy[:, 0] >= 499.5).all()


def test_no_overlap_raises_with_footprints(tmp_path: Path, utm_sar) -> None:
    far = open_scene(
        _tif(tmp_path / "far.tif", 500, 500, "EPSG:32615", Affine(1, 0, 600000, 0, -1, 4500000)), "optical"
    )
    with pytest.raises(
        NoOverlapError, match=r"do not overlap: SAR footprint \(500000, 4\.499e\+06.*optical footprint"
    ):
        geocoding_tiepoints(utm_sar, far)


def test_not_georeferenced_raises(tmp_path: Path, utm_sar) -> None:
    plain = open_scene(_tif(tmp_path / "plain.tif", 100, 100, None, None), "optical")
    with pytest.raises(CRSMismatchError, match="optical scene .* is not georeferenced"):
        geocoding_tiepoints(utm_sar, plain)
    with pytest.raises(CRSMismatchError, match="SAR scene .* is not georeferenced"):
        geocoding_registration(open_scene(tmp_path / "plain.tif", "sar"), utm_sar)


def test_too_few_overlapping_points_for_the_model(tmp_path: Path, utm_sar) -> None:
    # overlap with one column of grid points only: collinear, so no projective fit
    opt = open_scene(
        _tif(tmp_path / "o.tif", 10, 1000, "EPSG:32615", Affine(1, 0, 500995, 0, -1, 4500000)), "optical"
    )
    with pytest.raises(TiePointError):
        geocoding_registration(utm_sar, opt)
