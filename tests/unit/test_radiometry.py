"""saropt.io.radiometry: SAR dB stretch and optical percentile stretch to 8-bit."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from saropt.errors import ConfigError, InputError
from saropt.io.radiometry import OpticalMapping, SarMapping
from saropt.io.raster import Scene, open_scene


def scene_of(path: Path, data: np.ndarray, role: str = "sar", nodata: float | None = None) -> Scene:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(
        driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype.name
    )
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return open_scene(path, role)


@pytest.fixture(scope="module")
def amplitude() -> np.ndarray:
    # Rayleigh-like speckle over a gradient: amplitude ~0.05 to a few hundred, some below 1 (negative dB)
    rng = np.random.default_rng(42)
    base = np.geomspace(0.2, 200.0, 120, dtype=np.float64)[None, :] * np.ones((90, 1))
    return (base * rng.rayleigh(1.0, (90, 120))).astype(np.float32)


def full(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    return scene.read(scene.window)


def test_amplitude_intensity_db_give_the_same_8bit(tmp_path: Path, amplitude: np.ndarray) -> None:
    a = amplitude
    s_amp = scene_of(tmp_path / "amp.tif", a)
    s_int = scene_of(tmp_path / "int.tif", (a.astype(np.float64) ** 2).astype(np.float32))
    s_db = scene_of(tmp_path / "db.tif", (20 * np.log10(a.astype(np.float64))).astype(np.float32))

    m_amp = SarMapping(kind="amplitude").resolve(s_amp)  # float >= 0 would auto-resolve to intensity
    m_int = SarMapping().resolve(s_int)
    m_db = SarMapping().resolve(s_db)
    assert (m_amp.kind, m_int.kind, m_db.kind) == ("amplitude", "intensity", "db")
    for m in (m_int, m_db):
        assert m.db_min == pytest.approx(m_amp.db_min, abs=1e-4)
        assert m.db_max == pytest.approx(m_amp.db_max, abs=1e-4)

    u_amp = m_amp.apply(*full(s_amp))
    u_int = m_int.apply(*full(s_int))
    u_db = m_db.apply(*full(s_db))
    for u in (u_int, u_db):
        diff = np.abs(u.astype(int) - u_amp.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # float32 rounding only
    # mistaking amplitude for intensity changes nothing after the percentile stretch
    m_wrong = SarMapping(kind="intensity").resolve(s_amp)
    assert np.abs(m_wrong.apply(*full(s_amp)).astype(int) - u_amp.astype(int)).max() <= 1


def test_percentile_limits_and_clipping_fractions(tmp_path: Path, amplitude: np.ndarray) -> None:
    s = scene_of(tmp_path / "amp.tif", amplitude)
    m = SarMapping(kind="amplitude").resolve(s)
    db = 20 * np.log10(amplitude.astype(np.float32))
    lo, hi = np.percentile(db, [1.0, 99.5])  # scene < 1024 px: the decimated read is the full scene
    assert m.db_min == pytest.approx(lo, abs=1e-4) and m.db_max == pytest.approx(hi, abs=1e-4)
    u = m.apply(*full(s))
    assert u.dtype == np.uint8 and u.shape == amplitude.shape
    assert 0.009 <= (u == 0).mean() <= 0.015  # 1 % clipped low (+ rounding of the lowest bin)
    assert 0.004 <= (u == 255).mean() <= 0.008  # 0.5 % clipped high
    m2 = SarMapping(kind="amplitude", low_percentile=5, high_percentile=95).resolve(s)
    assert m2.db_min > m.db_min and m2.db_max < m.db_max


def test_explicit_db_limits_known_values() -> None:
    m = SarMapping(kind="amplitude", db_min=0.0, db_max=10.0)
    a = np.array([[1.0, 10**0.25, 10**0.5, 0.5, 100.0, 0.0]], np.float32)  # 0, 5, 10, -6, 40 dB, zero
    np.testing.assert_array_equal(m.apply(a, np.ones(a.shape, bool)), [[0, 128, 255, 0, 255, 0]])
    mi = SarMapping(kind="intensity", db_min=0.0, db_max=10.0)
    np.testing.assert_array_equal(mi.apply(a**2, np.ones(a.shape, bool)), [[0, 128, 255, 0, 255, 0]])
    md = SarMapping(kind="db", db_min=-20.0, db_max=0.0)
    np.testing.assert_array_equal(
        md.apply(np.array([[-20.0, -10.0, 0.0, 3.0, -30.0]], np.float32)[None], np.ones((1, 5), bool)),
        [[0, 128, 255, 255, 0]],
    )


def test_invalid_and_nonpositive_map_to_zero() -> None:
    m = SarMapping(kind="amplitude", db_min=-10.0, db_max=30.0)
    a = np.full((4, 5), 10.0, np.float32)
    valid = np.ones((4, 5), bool)
    valid[0, 0] = False
    a[1, 1] = 0.0
    a[2, 2] = -3.0
    a[3, 3] = np.nan
    u = m.apply(a, valid)
    assert u[0, 0] == 0 and u[1, 1] == 0 and u[2, 2] == 0 and u[3, 3] == 0
    assert (u[valid & np.isfinite(a) & (a > 0)] == round(255 * 30 / 40)).all()
    db = m.to_db(a, valid)
    assert (
        np.isnan(db[0, 0]) and np.isnan(db[1, 1]) and np.isnan(db[2, 2]) and db[0, 1] == pytest.approx(20.0)
    )


def test_auto_kinds(tmp_path: Path) -> None:
    u8 = np.arange(200, dtype=np.uint8).reshape(10, 20)
    s8 = scene_of(tmp_path / "u8.tif", u8)
    m8 = SarMapping().resolve(s8)
    assert m8.kind == "uint8" and m8.db_min is None
    np.testing.assert_array_equal(m8.apply(*full(s8)), u8)  # identity
    s16 = scene_of(tmp_path / "u16.tif", (np.arange(200, dtype=np.uint16) * 300).reshape(10, 20), nodata=0)
    m16 = SarMapping().resolve(s16)
    assert m16.kind == "amplitude" and m16.db_max > m16.db_min
    u = m16.apply(*full(s16))
    assert u[0, 0] == 0  # nodata


def test_resolve_rejects_scene_without_valid_pixels(tmp_path: Path) -> None:
    s = scene_of(tmp_path / "zeros.tif", np.zeros((5, 5), np.uint16))
    with pytest.raises(InputError, match="no valid SAR pixel"):
        SarMapping().resolve(s)


def test_unresolved_and_bad_configs() -> None:
    with pytest.raises(InputError, match="not resolved"):
        SarMapping().apply(np.ones((2, 2), np.float32), np.ones((2, 2), bool))
    with pytest.raises(ConfigError):
        SarMapping(kind="sigma0")
    with pytest.raises(ConfigError):
        SarMapping(low_percentile=50, high_percentile=10)
    with pytest.raises(ConfigError):
        SarMapping(kind="db", db_min=3.0, db_max=1.0)
    with pytest.raises(ConfigError):
        SarMapping(kind="db", db_min=3.0)
    with pytest.raises(InputError, match="shape"):
        SarMapping(kind="db", db_min=0.0, db_max=1.0).apply(
            np.ones((2, 2, 2), np.float32), np.ones((2, 2), bool)
        )
    with pytest.raises(ConfigError):
        OpticalMapping(kind="gamma")
    with pytest.raises(ConfigError):
        OpticalMapping(kind="percentile", lows=(0.0, 0.0), highs=(1.0, 1.0))


def test_to_dict_round_trip() -> None:
    m = SarMapping(kind="amplitude", db_min=1.5, db_max=40.25)
    d = m.to_dict()
    json.dumps(d)
    assert SarMapping.from_dict(d) == m
    o = OpticalMapping(kind="percentile", lows=(1.0, 2.0, 3.0), highs=(100.0, 200.0, 300.0))
    od = o.to_dict()
    assert json.loads(json.dumps(od)) == od and od["lows"] == [1.0, 2.0, 3.0]
    assert OpticalMapping.from_dict(od) == o
    with pytest.raises(ConfigError, match="unknown"):
        SarMapping.from_dict({"kind": "db", "gain": 2})


# ---------------------------------------------------------------------------------------------------- optical


def test_optical_uint8_passes_through(tmp_path: Path) -> None:
    rgb = (np.arange(3 * 8 * 9) % 256).astype(np.uint8).reshape(3, 8, 9)
    s = scene_of(tmp_path / "rgb.tif", rgb, role="optical")
    m = OpticalMapping().resolve(s)
    assert m.kind == "none"
    out = m.apply(*full(s))
    assert out.shape == (8, 9, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.moveaxis(rgb, 0, 2))
    grey = OpticalMapping(kind="none").apply(rgb[:1].astype(np.float32), np.ones((8, 9), bool))
    assert grey.shape == (8, 9, 1)


def test_optical_percentile_per_band(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = (
        np.stack(
            [rng.normal(300, 50, (40, 50)), rng.normal(1000, 200, (40, 50)), rng.normal(3000, 10, (40, 50))]
        )
        .clip(1, 65535)
        .astype(np.uint16)
    )
    data[:, :2, :] = 0
    s = scene_of(tmp_path / "u16rgb.tif", data, role="optical", nodata=0)
    m = OpticalMapping().resolve(s)
    assert m.kind == "percentile" and len(m.lows) == 3
    valid_px = data[:, 2:, :].reshape(3, -1).astype(np.float32)
    for b in range(3):
        lo, hi = np.percentile(valid_px[b], [0.5, 99.5])
        assert m.lows[b] == pytest.approx(lo) and m.highs[b] == pytest.approx(hi)
    out = m.apply(*full(s))
    assert out.shape == (40, 50, 3)
    assert (out[:2] == 0).all()  # nodata rows
    for b in range(3):  # each band stretched on its own: about half its pixels above mid-grey
        assert 0.4 < (out[2:, :, b] > 127).mean() < 0.6
        assert 0.002 < (out[2:, :, b] == 255).mean() < 0.01
    # band order is kept: the channel of band 1 correlates with band 1
    assert np.corrcoef(out[2:, :, 0].ravel(), data[0, 2:].ravel())[0, 1] > 0.99


def test_sar_lookup_table_equals_the_float_mapping() -> None:
    from saropt.io.radiometry import SarMapping

    rng = np.random.default_rng(3)
    for kind, dtype in (("amplitude", np.uint16), ("amplitude", np.int16), ("intensity", np.uint16)):
        m = SarMapping(kind=kind, db_min=-3.0, db_max=41.0)
        info = np.iinfo(dtype)
        # 300 rows: apply_lut works in bands of 128 rows, the last one partial
        raw = rng.integers(info.min, info.max, (300, 130), endpoint=True).astype(dtype)
        valid = rng.random((300, 130)) > 0.1
        lut = m.lut(dtype)
        assert lut is not None and lut.shape == (2 ** (8 * np.dtype(dtype).itemsize),)
        np.testing.assert_array_equal(m.apply_lut(raw, valid, lut), m.apply(raw.astype(np.float32), valid))
    assert SarMapping(kind="db", db_min=-20.0, db_max=5.0).lut(np.float32) is None
