"""Tests of the synthetic SAR/optical scene-pair generator (saropt.synthetic).

One small pair (512 x 576, non-square so that a row/column swap fails) is generated per module; the assertions
are on physical and geometric truths: the class rasters of the two grids agree through the true matrix, the
speckle has the requested number of looks, buildings give double bounce, layover lies towards near range and
shadow away from it, the sea is >10 dB darker than fields, tie-point noise has the requested spread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio

from saropt.errors import InputError
from saropt.synthetic import LandCover, make_scene_pair, truth_matrix
from saropt.synthetic.sar import speckle

SIZE = (512, 576)
SEED = 5
LOOKS = 4
NOISE = 0.5
N_TP = 150
CROPS = [LandCover.CROP_GREEN, LandCover.CROP_DARK, LandCover.CROP_RIPE, LandCover.CROP_HARVESTED]
FILES = ["sar.tif", "optical.tif", "tiepoints.csv", "classes_sar.tif", "classes_opt.tif", "truth.json"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_scene_pair(
        tmp_path_factory.mktemp("pair"),
        sar_size=SIZE,
        seed=SEED,
        looks=LOOKS,
        n_tiepoints=N_TP,
        tiepoint_noise_px=NOISE,
        outlier_fraction=0.1,
    )


@pytest.fixture(scope="module")
def truth(pair) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(Path(pair.truth_path).read_text())


@pytest.fixture(scope="module")
def sar(pair) -> np.ndarray:  # type: ignore[no-untyped-def]
    with rasterio.open(pair.sar_path) as ds:
        return ds.read(1)


@pytest.fixture(scope="module")
def classes(pair) -> np.ndarray:  # type: ignore[no-untyped-def]
    with rasterio.open(pair.classes_path) as ds:
        return ds.read(1)


def _intensity(dn: np.ndarray) -> np.ndarray:
    return (dn.astype(np.float64) / 100.0) ** 2  # AMPLITUDE_SCALE = 100


def _erode(mask: np.ndarray, k: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def _dilate(mask: np.ndarray, kx: int, ky: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((ky, kx), np.uint8)).astype(bool)


def _wedge(truth: dict, shape: tuple[int, int]) -> np.ndarray:
    a, b, c = truth["sar"]["nodata_line"]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return a * xx + b * yy + c > 0


def test_files_sizes_dtypes_and_nodata(pair, truth, sar) -> None:  # type: ignore[no-untyped-def]
    out = Path(pair.sar_path).parent
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary files left
    assert pair.sar_size == SIZE and sar.shape == SIZE and sar.dtype == np.uint16
    with rasterio.open(pair.sar_path) as ds:
        assert ds.nodata == 0 and ds.count == 1
    # nodata (0) exactly in the wedge cut off the top-right corner, nowhere else
    wedge = _wedge(truth, SIZE)
    assert 0.005 < wedge.mean() < 0.05
    np.testing.assert_array_equal(sar == 0, wedge)
    ho, wo = round(SIZE[0] / 1.05), round(SIZE[1] / 1.05)
    assert pair.opt_size == (ho, wo) == tuple(truth["opt_size"])
    with rasterio.open(pair.opt_path) as ds:
        opt = ds.read()
        assert ds.count == 3 and ds.dtypes == ("uint8",) * 3
    assert opt.shape == (3, ho, wo) and opt.min() >= 1  # 0 is reserved for nodata
    with rasterio.open(pair.opt_classes_path) as ds:
        assert ds.shape == (ho, wo) and ds.dtypes[0] == "uint8"
    # the optical footprint covers most of the SAR grid, not all of it
    cover = cv2.warpAffine(
        np.ones((ho, wo), np.uint8), pair.opt_to_sar[:2], SIZE[::-1], flags=cv2.INTER_NEAREST
    )
    assert 0.8 < cover.mean() < 0.99
    np.testing.assert_allclose(np.array(truth["opt_to_sar"]), pair.opt_to_sar)
    assert truth["seed"] == SEED and truth["sea"]["polygons_sar_px"] and truth["seamline"] is not None


def test_same_seed_same_bytes_other_seed_differs(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    again = make_scene_pair(
        tmp_path / "again",
        sar_size=SIZE,
        seed=SEED,
        looks=LOOKS,
        n_tiepoints=N_TP,
        tiepoint_noise_px=NOISE,
        outlier_fraction=0.1,
    )
    a, b = Path(pair.sar_path).parent, Path(again.sar_path).parent
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    other = make_scene_pair(
        tmp_path / "other",
        sar_size=SIZE,
        seed=SEED + 1,
        looks=LOOKS,
        n_tiepoints=N_TP,
        tiepoint_noise_px=NOISE,
        outlier_fraction=0.1,
    )
    c = Path(other.sar_path).parent
    for name in ("sar.tif", "optical.tif", "tiepoints.csv", "classes_sar.tif"):
        assert (a / name).read_bytes() != (c / name).read_bytes(), name


def test_truth_matrix_definition() -> None:
    m = truth_matrix((500, 600), (480, 570), 3.0, 1.05, (37.0, -22.0))
    centre_opt = np.array([(570 - 1) / 2, (480 - 1) / 2, 1.0])
    np.testing.assert_allclose(m @ centre_opt, [(600 - 1) / 2 + 37.0, (500 - 1) / 2 - 22.0, 1.0])
    assert np.linalg.det(m[:2, :2]) == pytest.approx(1.05**2)
    assert np.degrees(np.arctan2(m[1, 0], m[0, 0])) == pytest.approx(
        3.0
    )  # +x of the optical turns towards +y


def test_class_rasters_agree_through_the_true_matrix(pair, classes) -> None:  # type: ignore[no-untyped-def]
    with rasterio.open(pair.opt_classes_path) as ds:
        opt_cls = ds.read(1)
    h, w = SIZE
    m = pair.opt_to_sar[:2]
    warped = cv2.warpAffine(opt_cls, m, (w, h), flags=cv2.INTER_NEAREST)
    cover = cv2.warpAffine(np.ones_like(opt_cls), m, (w, h), flags=cv2.INTER_NEAREST).astype(bool)
    kernel = np.ones((5, 5), np.uint8)
    boundary = cv2.dilate(classes, kernel) != cv2.erode(classes, kernel)
    inside = _erode(cover, 5)
    valid = inside & ~boundary
    assert valid.mean() > 0.5
    assert (warped == classes)[valid].mean() > 0.95  # measured: > 0.9999
    # everywhere (boundaries included) the true matrix beats the same matrix moved by 1 or 2 pixels
    agree = (warped == classes)[inside].mean()
    assert agree > 0.97
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (0, 2)]:
        moved = m.copy()
        moved[:, 2] += (dx, dy)
        other = (cv2.warpAffine(opt_cls, moved, (w, h), flags=cv2.INTER_NEAREST) == classes)[inside].mean()
        assert other < agree - (0.005 if abs(dx) + abs(dy) == 1 else 0.02), (dx, dy)


def test_tiepoint_noise_and_outliers(pair, truth) -> None:  # type: ignore[no-untyped-def]
    tp = np.loadtxt(pair.tiepoints_path, delimiter=",", skiprows=1)
    header = Path(pair.tiepoints_path).read_text().splitlines()[0]
    assert header == "x_sar,y_sar,x_opt,y_opt" and tp.shape == (N_TP, 4)
    a = pair.opt_to_sar
    res = tp[:, :2] - (tp[:, 2:] @ a[:2, :2].T + a[:2, 2])
    out = np.zeros(N_TP, bool)
    out[truth["tiepoints"]["outliers"]] = True
    assert out.sum() == round(0.1 * N_TP)
    inl = res[~out]
    assert np.all(np.abs(inl.std(axis=0) / NOISE - 1) < 0.2)
    assert np.all(np.abs(inl.mean(axis=0)) < 0.15)
    assert np.hypot(*res[out].T).min() >= 10.0
    h, w = SIZE
    assert (
        (tp[:, 0] >= 0).all()
        and (tp[:, 0] <= w - 1).all()
        and (tp[:, 1] >= 0).all()
        and (tp[:, 1] <= h - 1).all()
    )


@pytest.mark.parametrize("looks,corr,tol", [(1, 0.0, 0.05), (4, 0.0, 0.05), (4, 0.7, 0.10), (2.5, 0.0, 0.05)])
def test_speckle_is_gamma_with_l_looks(looks: float, corr: float, tol: float) -> None:
    sigma0 = np.full((384, 384), 0.05, dtype=np.float32)
    inten = speckle(sigma0, looks, np.random.default_rng(1), correlation_px=corr).astype(np.float64)
    assert inten.mean() == pytest.approx(0.05, rel=0.03)
    assert inten.var() / inten.mean() ** 2 == pytest.approx(1.0 / looks, rel=tol)
    if corr > 0:  # neighbours are correlated, distant pixels not
        z = inten / inten.mean() - 1
        assert np.mean(z[:, 1:] * z[:, :-1]) / np.mean(z * z) > 0.3
        assert abs(np.mean(z[:, 10:] * z[:, :-10]) / np.mean(z * z)) < 0.05


def test_speckle_in_the_scene_has_l_looks(classes, sar) -> None:  # type: ignore[no-untyped-def]
    inten = _intensity(sar)
    crop = np.any([_erode(classes == k, 15) for k in CROPS], axis=0)  # interiors of each crop class
    tall = np.isin(classes, [LandCover.BUILDING, LandCover.SHIP])
    # away from layover/shadow of buildings and forest edges (they reach along x, the range direction)
    mask = crop & ~_dilate(tall, 241, 9) & ~_dilate(classes == LandCover.FOREST, 81, 9) & (sar > 0)
    enl = []
    for r in range(0, SIZE[0] - 15, 16):
        for c in range(0, SIZE[1] - 15, 16):
            if mask[r : r + 16, c : c + 16].all():
                blk = inten[r : r + 16, c : c + 16]
                enl.append(blk.mean() ** 2 / blk.var())
    # the median over blocks ignores the few that straddle two parcels of one crop class
    assert len(enl) >= 20
    assert np.median(enl) == pytest.approx(LOOKS, rel=0.15)


def test_sea_is_much_darker_than_fields(classes, sar) -> None:  # type: ignore[no-untyped-def]
    db = 10 * np.log10(np.maximum(_intensity(sar), 1e-6))
    sea = _erode(classes == LandCover.SEA, 9) & ~_dilate(classes == LandCover.SHIP, 121, 61) & (sar > 0)
    fields = _erode(np.isin(classes, CROPS), 9)
    assert sea.sum() > 5000 and fields.sum() > 5000
    assert np.median(db[fields]) - np.median(db[sea]) > 10.0


def test_double_bounce_at_buildings(classes, sar) -> None:  # type: ignore[no-untyped-def]
    db = 10 * np.log10(np.maximum(_intensity(sar), 1e-6))
    near = _dilate(classes == LandCover.BUILDING, 5, 5) & ~(classes == LandCover.BUILDING)
    tall = np.isin(classes, [LandCover.BUILDING, LandCover.SHIP])
    fields = _erode(np.isin(classes, CROPS), 9) & ~_dilate(tall, 241, 9)  # out of reach of any layover
    bright_near = (db[near] > 5.0).mean()
    bright_fields = (db[fields] > 5.0).mean()
    assert bright_near > 0.01
    assert bright_near > 20 * max(bright_fields, 1e-4)


def test_layover_towards_near_range_and_shadow_behind(classes, sar) -> None:  # type: ignore[no-untyped-def]
    db = 10 * np.log10(np.maximum(_intensity(sar), 1e-6))
    b = classes == LandCover.BUILDING
    ground = ~b & (sar > 0)
    # the ground just left (near range) of each building wall vs just right (far range) of it
    left_edge = b[:, 3:] & ~b[:, 2:-1] & ground[:, 1:-2] & ground[:, :-3]
    right_edge = b[:, :-3] & ~b[:, 1:-2] & ground[:, 1:-2] & ground[:, 2:-1]
    front = db[:, :-3][left_edge]  # two pixels in front of the wall facing the sensor
    # two pixels behind the far wall, where no other building lays over the shadow from further away
    ys, xs = np.nonzero(right_edge)
    free = [not b[max(y - 4, 0) : y + 5, x + 2 : x + 90].any() for y, x in zip(ys, xs)]
    behind = db[ys[free], xs[free] + 3]
    assert len(front) > 100 and len(behind) > 10
    assert np.median(front) > np.median(behind) + 10.0
    assert np.median(behind) < -20.0  # radar shadow: thermal noise only


def test_optical_sea_is_textureless_and_seamline_visible(pair, truth) -> None:  # type: ignore[no-untyped-def]
    with rasterio.open(pair.opt_path) as ds:
        grey = ds.read().astype(np.float32).mean(axis=0)
    with rasterio.open(pair.opt_classes_path) as ds:
        cls = ds.read(1)
    mean = cv2.blur(grey, (15, 15))
    local_std = np.sqrt(np.maximum(cv2.blur(grey * grey, (15, 15)) - mean * mean, 0))
    sea = _erode(cls == LandCover.SEA, 41)
    land = _erode(np.isin(cls, CROPS + [LandCover.FOREST, LandCover.URBAN_GROUND]), 15)
    assert sea.sum() > 2000 and land.sum() > 2000
    sea_std = np.median(local_std[sea])
    assert sea_std < 3.5, sea_std  # sensor noise, faint waves and glint only
    assert np.percentile(local_std[land], 75) > 2 * sea_std
    # the second acquisition (a*x + b*y + c > 0) is brighter, class by class
    a, b, c = truth["seamline"]["opt_line"]
    yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    d = a * xx + b * yy + c
    ratios = []
    for k in np.unique(cls):
        plus = (cls == k) & (d > 3) & (d < 60)
        minus = (cls == k) & (d < -3) & (d > -60)
        if plus.sum() > 300 and minus.sum() > 300:
            ratios.append(grey[plus].mean() / grey[minus].mean())
    assert ratios and np.median(ratios) > 1.05


def test_georeferenced_db_pair(tmp_path: Path) -> None:
    p = make_scene_pair(
        tmp_path,
        sar_size=(256, 320),
        seed=1,
        sar_format="db",
        georeferenced=True,
        n_tiepoints=10,
        write_classes=False,
    )
    truth = json.loads(Path(p.truth_path).read_text())
    assert p.classes_path is None and not (tmp_path / "classes_sar.tif").exists()
    with rasterio.open(p.sar_path) as sds, rasterio.open(p.opt_path) as ods:
        db = sds.read(1)
        assert db.dtype == np.float32 and np.isnan(sds.nodata)
        assert sds.crs.to_epsg() == 32633 and ods.crs.to_epsg() == 32633
        np.testing.assert_array_equal(np.isnan(db), _wedge(truth, (256, 320)))
        assert -35 < np.nanmedian(db) < 5
        # geocoding: optical pixel -> map (corner convention, +0.5) -> SAR pixel (-0.5) = truth + known error
        q = np.array([[10.0, 20.0], [200.0, 150.0], [250.3, 7.7]])
        g_opt = np.array(tuple(ods.transform)[:9]).reshape(3, 3)
        g_sar = np.array(tuple(sds.transform)[:9]).reshape(3, 3)
        qh = np.c_[q + 0.5, np.ones(len(q))]
        geocoded = (np.linalg.inv(g_sar) @ g_opt @ qh.T).T[:, :2] - 0.5
    a = p.opt_to_sar
    expected = q @ a[:2, :2].T + a[:2, 2] + np.array(truth["georeferencing"]["geocoding_error_sar_px"])
    np.testing.assert_allclose(geocoded, expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sar_format": "jpeg"},
        {"sar_size": (32, 32)},
        {"looks": 0},
        {"sea_fraction": 0.95},
        {"outlier_fraction": 0.7},
        {"georeferenced": True, "crs": "EPSG:4326"},
        {"georeferenced": True, "crs": "nope"},
        {"tile": 300},
    ],
)
def test_bad_arguments_raise_input_error(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(InputError):
        make_scene_pair(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x" / "sar.tif").exists()


def test_import_without_torch() -> None:
    code = "import sys, saropt.synthetic.scene, saropt.viz.overview; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
