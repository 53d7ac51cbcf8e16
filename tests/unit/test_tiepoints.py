"""saropt.io.tiepoints: file formats (csv, QGIS .points, check points) and GCP tie points."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform

from saropt.errors import TiePointError
from saropt.io.raster import Scene, open_scene
from saropt.io.tiepoints import FORMATS, TiePoints, read_tiepoints, tiepoints_from_gcps, write_tiepoints

UTM = "EPSG:32615"
SAR_T = Affine(1.0, 0.0, 250000.0, 0.0, -1.0, 4580000.0)  # 1 m pixels
OPT_T = Affine(0.5, 0.0, 250020.0, 0.0, -0.5, 4579980.0)  # 0.5 m pixels, 20 m inside


def make_scene(path: Path, h: int, w: int, role: str, transform=None, crs=None, gcps=None) -> Scene:
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="uint8")
    if transform is not None:
        profile.update(transform=transform, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((1, h, w), 7, np.uint8))
            if gcps is not None:
                dst.gcps = gcps
    return open_scene(path, role)


@pytest.fixture()
def points() -> TiePoints:
    rng = np.random.default_rng(7)
    sar = rng.uniform(0, 200, (25, 2))
    opt = rng.uniform(0, 300, (25, 2))
    score = rng.uniform(0.1, 1.0, 25)
    return TiePoints(sar, opt, score, source="test")


@pytest.fixture()
def geo_pair(tmp_path: Path) -> tuple[Scene, Scene]:
    return (
        make_scene(tmp_path / "sar.tif", 220, 230, "sar", SAR_T, UTM),
        make_scene(tmp_path / "opt.tif", 320, 330, "optical", OPT_T, UTM),
    )


@pytest.fixture()
def plain_pair(tmp_path: Path) -> tuple[Scene, Scene]:
    return make_scene(tmp_path / "sar.png.tif", 220, 230, "sar"), make_scene(
        tmp_path / "opt.tif", 320, 330, "optical"
    )


# ---------------------------------------------------------------------------------------------------------- csv


def test_csv_round_trip_with_and_without_score(tmp_path: Path, points: TiePoints) -> None:
    p = tmp_path / "tp.csv"
    write_tiepoints(points, p)
    assert p.read_text().splitlines()[0] == "x_sar,y_sar,x_opt,y_opt,score"
    back = read_tiepoints(p)
    np.testing.assert_allclose(back.sar_xy, points.sar_xy, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.opt_xy, points.opt_xy, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.score, points.score, atol=1e-12)
    assert back.source == "csv" and back.meta["path"] == str(p)
    write_tiepoints(TiePoints(points.sar_xy, points.opt_xy), p)
    assert p.read_text().splitlines()[0] == "x_sar,y_sar,x_opt,y_opt"
    assert read_tiepoints(p).score is None


def test_csv_extra_columns_and_order(tmp_path: Path) -> None:
    p = tmp_path / "tp.csv"
    p.write_text("id, X_OPT ,y_opt,x_sar,y_sar,note\n1,10,20,30,40,a\n2,11,21,31,41,b\n")
    tp = read_tiepoints(p)
    np.testing.assert_array_equal(tp.sar_xy, [[30, 40], [31, 41]])
    np.testing.assert_array_equal(tp.opt_xy, [[10, 20], [11, 21]])


# ----------------------------------------------------------------------------------------------------------- qgis


def test_qgis_round_trip_not_georeferenced(tmp_path: Path, points: TiePoints, plain_pair) -> None:
    sar, opt = plain_pair
    p = tmp_path / "opt.tif.points"
    write_tiepoints(points, p, sar=sar, opt=opt)
    lines = p.read_text().splitlines()
    assert lines[0] == "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"
    back = read_tiepoints(p, sar=sar, opt=opt)
    np.testing.assert_allclose(back.sar_xy, points.sar_xy, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.opt_xy, points.opt_xy, atol=1e-9, rtol=0)
    assert (back.score == 1).all()  # every point enabled
    back2 = read_tiepoints(p)  # no #CRS: the scenes are not needed
    np.testing.assert_allclose(back2.sar_xy, points.sar_xy, atol=1e-9, rtol=0)


def test_qgis_round_trip_georeferenced(tmp_path: Path, points: TiePoints, geo_pair) -> None:
    sar, opt = geo_pair
    p = tmp_path / "pts.points"
    write_tiepoints(points, p, sar=sar, opt=opt)
    lines = p.read_text().splitlines()
    assert lines[0].startswith("#CRS: ") and CRS.from_wkt(lines[0][6:]) == CRS.from_string(UTM)
    first = [float(v) for v in lines[2].split(",")]
    np.testing.assert_allclose(first[:2], sar.pixel_to_map(points.sar_xy[:1])[0])  # map coordinates
    np.testing.assert_allclose(first[2:4], opt.pixel_to_map(points.opt_xy[:1])[0])  # source layer CRS
    back = read_tiepoints(p, sar=sar, opt=opt)
    np.testing.assert_allclose(back.sar_xy, points.sar_xy, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.opt_xy, points.opt_xy, atol=1e-9, rtol=0)
    with pytest.raises(TiePointError, match="sar="):
        read_tiepoints(p)


def test_qgis_pixel_corner_y_negated_convention(tmp_path: Path) -> None:
    p = tmp_path / "a.points"
    # centre of the top-left pixel is (0.5, -0.5) in QGIS's coordinates of a non-georeferenced raster
    p.write_text(
        "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual\n10.5,-20.5,0.5,-0.5,1,0,0,0\n3,-4,7.25,-9,1,0,0,0\n"
    )
    tp = read_tiepoints(p)
    np.testing.assert_allclose(tp.sar_xy, [[10.0, 20.0], [2.5, 3.5]])
    np.testing.assert_allclose(tp.opt_xy, [[0.0, 0.0], [6.75, 8.5]])


def test_qgis_old_header_tabs_and_disabled_rows(tmp_path: Path) -> None:
    p = tmp_path / "old.points"
    p.write_text("mapX\tmapY\tpixelX\tpixelY\tenable\n10.5\t-20.5\t1.5\t-2.5\t1\n30.5\t-40.5\t3.5\t-4.5\t0\n")
    tp = read_tiepoints(p)
    assert len(tp) == 2  # disabled rows are kept ...
    np.testing.assert_array_equal(tp.score, [1.0, 0.0])  # ... with score 0
    np.testing.assert_allclose(tp.opt_xy, [[1.0, 2.0], [3.0, 4.0]])
    p.write_text("mapX,mapY,pixelX,pixelY,enable\n10.5,-20.5,1.5,-2.5,1\n")
    np.testing.assert_allclose(read_tiepoints(p).sar_xy, [[10.0, 20.0]])


def test_qgis_old_header_is_pixels_even_for_georeferenced_optical(tmp_path: Path, geo_pair) -> None:
    sar, opt = geo_pair
    p = tmp_path / "old.points"
    m = sar.pixel_to_map(np.array([[5.0, 6.0]]))[0]
    p.write_text(f"mapX,mapY,pixelX,pixelY,enable\n{float(m[0])!r},{float(m[1])!r},1.5,-2.5,1\n")
    tp = read_tiepoints(p, sar=sar, opt=opt)
    np.testing.assert_allclose(tp.sar_xy, [[5.0, 6.0]], atol=1e-9)
    np.testing.assert_allclose(tp.opt_xy, [[1.0, 2.0]])


def test_qgis_crs_line_in_another_crs_is_reprojected(tmp_path: Path, points: TiePoints, geo_pair) -> None:
    sar, opt = geo_pair
    m = sar.pixel_to_map(points.sar_xy)
    lon, lat = warp_transform(CRS.from_string(UTM), CRS.from_epsg(4326), m[:, 0].tolist(), m[:, 1].tolist())
    src = np.column_stack([points.opt_xy[:, 0] + 0.5, -(points.opt_xy[:, 1] + 0.5)])
    rows = [f"{a!r},{b!r},{c!r},{d!r},1,0,0,0" for a, b, (c, d) in zip(lon, lat, src.tolist(), strict=True)]
    p = tmp_path / "ll.points"
    p.write_text(f"#CRS: {CRS.from_epsg(4326).to_wkt()}\nmapX,mapY,sourceX,sourceY,enable,dX,dY,residual\n")
    p.write_text(p.read_text() + "\n".join(rows) + "\n")
    tp = read_tiepoints(p, sar=sar)  # opt not given: source columns are pixels
    np.testing.assert_allclose(tp.sar_xy, points.sar_xy, atol=1e-6)
    np.testing.assert_allclose(tp.opt_xy, points.opt_xy, atol=1e-9)


def test_qgis_without_crs_line_uses_sar_crs(tmp_path: Path, points: TiePoints, geo_pair) -> None:
    sar, opt = geo_pair
    p = tmp_path / "pts.points"
    write_tiepoints(points, p, sar=sar)
    p.write_text("\n".join(p.read_text().splitlines()[1:]) + "\n")  # drop the #CRS line
    tp = read_tiepoints(p, sar=sar)
    np.testing.assert_allclose(tp.sar_xy, points.sar_xy, atol=1e-9)


def test_qgis_disabled_points_written_from_zero_scores(tmp_path: Path, points: TiePoints) -> None:
    score = points.score.copy()
    score[:3] = 0.0
    p = tmp_path / "z.points"
    write_tiepoints(TiePoints(points.sar_xy, points.opt_xy, score), p)
    back = read_tiepoints(p)
    np.testing.assert_array_equal(back.score, (score > 0).astype(float))


# ---------------------------------------------------------------------------------------------------- checkpoints


def test_checkpoints_columns_and_origin(tmp_path: Path) -> None:
    p = tmp_path / "cp.txt"
    p.write_bytes(b"     76.00    101.00     77.13    100.92\r\n81\t77\t81.38\t76.42\r\n\r\n")
    tp = read_tiepoints(p)
    np.testing.assert_allclose(tp.opt_xy, [[76, 101], [81, 77]])  # ref = optical
    np.testing.assert_allclose(tp.sar_xy, [[77.13, 100.92], [81.38, 76.42]])  # sen = SAR
    tp1 = read_tiepoints(p, origin=1)
    np.testing.assert_allclose(tp1.opt_xy, [[75, 100], [80, 76]])
    np.testing.assert_allclose(tp1.sar_xy, tp.sar_xy - 1)
    assert tp1.meta["origin"] == 1


@pytest.mark.parametrize("origin", [0, 1])
def test_checkpoints_round_trip(tmp_path: Path, points: TiePoints, origin: int) -> None:
    p = tmp_path / "cp.txt"
    write_tiepoints(points, p, origin=origin)
    raw = np.loadtxt(p)
    np.testing.assert_allclose(raw[:, :2], points.opt_xy + origin)
    back = read_tiepoints(p, origin=origin)
    np.testing.assert_allclose(back.sar_xy, points.sar_xy, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.opt_xy, points.opt_xy, atol=1e-9, rtol=0)


def test_origin_only_for_checkpoints(tmp_path: Path, points: TiePoints) -> None:
    with pytest.raises(TiePointError, match="checkpoints"):
        write_tiepoints(points, tmp_path / "a.csv", origin=1)
    with pytest.raises(TiePointError, match="origin"):
        write_tiepoints(points, tmp_path / "a.txt", origin=2)


# ------------------------------------------------------------------------------------------- detection and errors


def test_format_detection_by_content_then_extension(tmp_path: Path, points: TiePoints) -> None:
    p = tmp_path / "really_csv.txt"
    write_tiepoints(points, p, fmt="csv")
    assert read_tiepoints(p).source == "csv"
    q = tmp_path / "noext"
    write_tiepoints(points, q, fmt="qgis")
    assert read_tiepoints(q).source == "qgis"
    c = tmp_path / "cp.dat"
    write_tiepoints(points, c, fmt="checkpoints")
    assert read_tiepoints(c).source == "checkpoints"
    with pytest.raises(TiePointError, match="csv.*qgis.*checkpoints"):
        write_tiepoints(points, tmp_path / "x.json")
    with pytest.raises(TiePointError, match="accepted formats"):
        read_tiepoints(c, fmt="envi")
    bad = tmp_path / "what.dat"
    bad.write_text("hello world\n")
    with pytest.raises(TiePointError, match="accepted formats"):
        read_tiepoints(bad)
    assert FORMATS == ("csv", "qgis", "checkpoints")


@pytest.mark.parametrize(
    "name,text,match",
    [
        ("e.csv", "", "empty"),
        ("e.txt", "\n  \n", "empty"),
        ("h.csv", "x_sar,y_sar,x_opt,y_opt\n", "no tie points"),
        ("c.csv", "x_sar,y_sar,x_opt,y_opt\n1,2,3,4\n1,2,3\n", "line 3: 3 columns"),
        ("n.csv", "x_sar,y_sar,x_opt,y_opt\n1,2,3,4\n1,2,x,4\n", "line 3: non-numeric"),
        ("m.csv", "x_sar,y_sar,x_opt\n1,2,3\n", r"line 1: header lacks column\(s\) \['y_opt'\]"),
        ("c.txt", "1 2 3 4\n1 2 3 4 5\n", "line 2: 5 columns"),
        ("n.txt", "1 2 3 4\n1 2 3 four\n", "line 2: non-numeric"),
        ("f.txt", "1 2 3 4\n1 2 nan 4\n", "line 2: NaN"),
        ("q.points", "mapX,mapY,sourceX,sourceY\n1,2,3\n", "line 2: 3 columns"),
        ("h.points", "#CRS: \nfoo,bar\n1,2,3,4\n", "line 2: not a QGIS"),
    ],
)
def test_bad_files_name_path_and_line(tmp_path: Path, name: str, text: str, match: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(TiePointError, match=match) as err:
        read_tiepoints(p)
    assert name in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TiePointError, match="not found.*nope.csv"):
        read_tiepoints(tmp_path / "nope.csv")


def test_write_is_atomic(tmp_path: Path, points: TiePoints, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "tp.csv"
    p.write_text("old\n")

    def boom(tp):  # noqa: ANN001
        raise RuntimeError("disk full")

    import saropt.io.tiepoints as mod

    monkeypatch.setattr(mod, "_write_csv", boom)
    with pytest.raises(RuntimeError):
        write_tiepoints(points, p)
    assert p.read_text() == "old\n" and sorted(x.name for x in tmp_path.iterdir()) == ["tp.csv"]


# ------------------------------------------------------------------------------------------------------------ GCPs


def _gcps_for(scene_t: Affine, pix: np.ndarray, to_crs: str) -> list[GroundControlPoint]:
    """GCPs at pixel centres ``pix`` of a raster with geotransform ``scene_t`` (UTM), expressed in ``to_crs``."""
    m = np.array([scene_t @ (x + 0.5, y + 0.5) for x, y in pix])
    xs, ys = warp_transform(CRS.from_string(UTM), CRS.from_string(to_crs), m[:, 0].tolist(), m[:, 1].tolist())
    return [
        GroundControlPoint(row=y + 0.5, col=x + 0.5, x=X, y=Y)
        for (x, y), X, Y in zip(pix, xs, ys, strict=True)
    ]


def test_gcps_in_sar_against_georeferenced_optical(tmp_path: Path) -> None:
    pix = np.array([[0.0, 0.0], [200.0, 10.0], [15.0, 180.0], [190.0, 200.0], [100.0, 100.0]])
    gcps = _gcps_for(SAR_T, pix, "EPSG:4326")  # SAR carries GCPs in lon/lat, no geotransform
    sar = make_scene(tmp_path / "sar.tif", 220, 230, "sar", gcps=(gcps, CRS.from_epsg(4326)))
    opt = make_scene(tmp_path / "opt.tif", 320, 330, "optical", OPT_T, UTM)
    assert not sar.georeferenced
    tp = tiepoints_from_gcps(sar, opt)
    assert tp.source == "gcps" and tp.meta == {"sar_gcps": 5, "opt_gcps": 0}
    np.testing.assert_allclose(tp.sar_xy, pix, atol=1e-9)
    # same ground point: SAR pixel p is at UTM SAR_T(p+.5); optical pixel = OPT_T^-1(.) - .5 = 2 p + 0.5 - 40
    np.testing.assert_allclose(tp.opt_xy, 2 * pix + 0.5 - 40, atol=1e-6)


def test_gcps_on_both_sides_without_geotransforms(tmp_path: Path) -> None:
    sp = np.array([[0.0, 0.0], [200.0, 10.0], [15.0, 180.0], [190.0, 200.0]])
    op = np.array([[10.0, 5.0], [300.0, 20.0], [30.0, 290.0], [310.0, 300.0], [150.0, 160.0]])
    sar = make_scene(
        tmp_path / "s.tif", 220, 230, "sar", gcps=(_gcps_for(SAR_T, sp, UTM), CRS.from_string(UTM))
    )
    opt = make_scene(
        tmp_path / "o.tif", 320, 330, "optical", gcps=(_gcps_for(OPT_T, op, UTM), CRS.from_string(UTM))
    )
    tp = tiepoints_from_gcps(sar, opt)
    assert len(tp) == 9 and tp.meta == {"sar_gcps": 4, "opt_gcps": 5}
    # the relation is affine, so GDAL's first-order GCP polynomial reproduces it exactly
    np.testing.assert_allclose(tp.opt_xy, 2 * tp.sar_xy + 0.5 - 40, atol=1e-6)


def test_gcps_missing(tmp_path: Path, geo_pair) -> None:
    sar, opt = geo_pair
    with pytest.raises(TiePointError, match="GCPs"):
        tiepoints_from_gcps(sar, opt)
    plain = make_scene(tmp_path / "plain.tif", 10, 10, "optical")
    gsar = make_scene(
        tmp_path / "g.tif",
        220,
        230,
        "sar",
        gcps=(_gcps_for(SAR_T, np.array([[0.0, 0.0]] * 3), UTM), CRS.from_string(UTM)),
    )
    with pytest.raises(TiePointError, match="neither georeferenced nor has GCPs"):
        tiepoints_from_gcps(gsar, plain)
