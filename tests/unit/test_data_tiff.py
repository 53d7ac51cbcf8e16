"""The plain-TIFF fast path (saropt.data.tiff) against GDAL, its fallbacks, and the scaling it feeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from saropt.data.decode import read_raster
from saropt.data.scaling import Scaling
from saropt.data.tiff import read_plain_tiff
from saropt.errors import CorruptFileError


def _write(path: Path, arr: np.ndarray, **opts: object) -> Path:
    c, h, w = arr.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=arr.dtype, **opts) as dst:
        dst.write(arr)
    return path


def _gdal(path: Path, bands: list[int] | None = None) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(bands) if bands else src.read()


def _data(dtype: str, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        a = rng.normal(-12.0, 6.0, shape).astype(dtype)
        a[0, 0, :3] = np.nan
        return a
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
)
@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_plain_tiff_equals_gdal(tmp_path: Path, dtype: str, interleave: str) -> None:
    # 37 rows in strips of 8: the last strip is short; 5 bands; SEN12MS-like GeoTIFF tags
    arr = _data(dtype, (5, 37, 29))
    p = _write(
        tmp_path / "a.tif",
        arr,
        interleave=interleave,
        blockysize=8,
        crs="EPSG:32633",
        transform=rasterio.transform.Affine(10, 0, 500000, 0, -10, 4000000),
    )
    for bands in (None, [1], [4, 3, 2], [5, 1, 5]):
        got = read_plain_tiff(str(p), bands)
        assert got is not None, (dtype, interleave, bands)
        want = _gdal(p, bands)
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)  # exact, NaN at the same places
        np.testing.assert_array_equal(read_raster(p, bands), want)


def test_plain_tiff_big_endian_single_band_and_one_strip(tmp_path: Path) -> None:
    arr = _data("int16", (1, 16, 21))
    p = _write(tmp_path / "be.tif", arr, ENDIANNESS="BIG")
    assert p.read_bytes()[:2] == b"MM"
    got = read_plain_tiff(str(p))
    assert got is not None and got.dtype.isnative and got.shape == (1, 16, 21)
    np.testing.assert_array_equal(got, arr)
    one = _write(tmp_path / "one.tif", _data("uint16", (3, 12, 12)), blockysize=12)
    np.testing.assert_array_equal(read_plain_tiff(str(one), [3]), _gdal(one, [3]))


@pytest.mark.parametrize(
    "opts",
    [{"compress": "deflate"}, {"compress": "lzw"}, {"tiled": True, "blockxsize": 16, "blockysize": 16}],
)
def test_other_tiffs_fall_back_to_full_decoders(tmp_path: Path, opts: dict) -> None:
    arr = _data("uint16", (3, 40, 40))
    p = _write(tmp_path / "c.tif", arr, **opts)
    assert read_plain_tiff(str(p)) is None
    np.testing.assert_array_equal(read_raster(p, [3, 1]), arr[[2, 0]])  # tifffile or GDAL read it


def test_bigtiff_bad_bands_truncated_and_non_tiff(tmp_path: Path) -> None:
    arr = _data("uint16", (2, 33, 20))
    big = _write(tmp_path / "big.tif", arr, BIGTIFF="YES")
    assert read_plain_tiff(str(big)) is None
    np.testing.assert_array_equal(read_raster(big), arr)
    p = _write(tmp_path / "p.tif", arr)
    assert read_plain_tiff(str(p), [3]) is None and read_plain_tiff(str(p), [0]) is None
    with pytest.raises(CorruptFileError, match="has 2 bands"):
        read_raster(p, [3])
    cut = tmp_path / "cut.tif"
    cut.write_bytes(p.read_bytes()[:-50])
    assert read_plain_tiff(str(cut)) is None
    with pytest.raises(CorruptFileError, match=str(cut)):
        read_raster(cut)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    assert read_plain_tiff(str(junk)) is None and read_plain_tiff(str(tmp_path / "none.tif")) is None


def test_float_scaling_maps_nan_and_inf_like_clip_then_nan_to_num() -> None:
    raw = np.array([[[np.nan, -np.inf, np.inf, -30.0, -25.0, -12.5, 0.0, 3.0]]], np.float32)
    got = Scaling((-25.0,), (0.0,)).apply(raw)
    want = np.nan_to_num(np.clip((raw + 25.0) / 25.0, 0.0, 1.0), nan=0.0)
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert got[0, 0, 0] == 0.0 and got[0, 0, 2] == 1.0 and got[0, 0, 5] == pytest.approx(0.5)
    other = Scaling((-25.0,), (0.0,), nan_value=0.5).apply(raw)  # the general path keeps its NaN value
    assert other[0, 0, 0] == 0.5 and other[0, 0, 1] == 0.0
    per_band = Scaling((-25.0, -30.0), (0.0, 5.0)).apply(np.stack([raw[0], raw[0]]))
    np.testing.assert_allclose(per_band[1, 0], np.nan_to_num(np.clip((raw[0, 0] + 30) / 35, 0, 1)), atol=1e-7)
    unclipped = Scaling((-25.0,), (0.0,), clip=False).apply(raw)
    assert unclipped[0, 0, 0] == 0.0 and unclipped[0, 0, 7] == pytest.approx(1.12)
