"""saropt.io.images: atomic, deterministic PNG / GeoTIFF writers and the 8-bit reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from saropt.errors import CorruptFileError, InputError, RasterReadError
from saropt.io.images import (
    ImageWriteError,
    atomic_path,
    atomic_write_bytes,
    read_image,
    write_geotiff,
    write_png,
)

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (33, 47), dtype=np.uint8)
RGB = RNG.integers(0, 256, (33, 47, 3), dtype=np.uint8)


def only(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


@pytest.mark.parametrize("img", [GREY, RGB], ids=["grey", "rgb"])
def test_png_round_trip_and_deterministic(tmp_path: Path, img: np.ndarray) -> None:
    a, b = tmp_path / "a.png", tmp_path / "sub" / "b.png"
    write_png(a, img)
    write_png(b, img)
    assert a.read_bytes() == b.read_bytes()
    np.testing.assert_array_equal(read_image(a), img)
    assert only(tmp_path) == ["a.png", "sub"] and only(tmp_path / "sub") == ["b.png"]
    write_png(a, img, compression=9)
    np.testing.assert_array_equal(read_image(a), img)


def test_png_channel_order_is_rgb(tmp_path: Path) -> None:
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 255
    write_png(tmp_path / "r.png", red)
    bgr = cv2.imread(str(tmp_path / "r.png"), cv2.IMREAD_UNCHANGED)
    assert (bgr[..., 2] == 255).all() and (bgr[..., :2] == 0).all()
    np.testing.assert_array_equal(read_image(tmp_path / "r.png"), red)
    write_png(tmp_path / "g.png", GREY[:, :, None])  # (h, w, 1) is grey
    assert read_image(tmp_path / "g.png").shape == GREY.shape


def test_png_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="uint8"):
        write_png(tmp_path / "x.png", GREY.astype(np.float32))
    with pytest.raises(InputError, match="shape"):
        write_png(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="compression"):
        write_png(tmp_path / "x.png", GREY, compression=12)
    with pytest.raises(ImageWriteError):
        write_png(tmp_path / "x.notanimage", GREY)
    assert only(tmp_path) == []


def test_png_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.png"
    write_png(target, GREY)
    before = target.read_bytes()

    def broken(path, img, params):  # noqa: ANN001
        Path(path).write_bytes(b"\x89PNG half")
        raise cv2.error("disk full")

    monkeypatch.setattr(cv2, "imwrite", broken)
    with pytest.raises(ImageWriteError, match="keep.png"):
        write_png(target, RGB)
    assert target.read_bytes() == before and only(tmp_path) == ["keep.png"]


def test_atomic_path(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    with atomic_path(final) as tmp:
        assert Path(tmp).parent == tmp_path and tmp.endswith(".txt") and not final.exists()
        Path(tmp).write_text("done")
    assert final.read_text() == "done" and only(tmp_path) == ["out.txt"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as tmp:
            Path(tmp).write_text("half")
            raise KeyboardInterrupt
    assert final.read_text() == "done" and only(tmp_path) == ["out.txt"]


def test_atomic_write_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    final = tmp_path / "new" / "dir" / "p.png"  # missing folders are created
    atomic_write_bytes(final, b"first")
    atomic_write_bytes(final, b"second" * 10_000)
    assert final.read_bytes() == b"second" * 10_000 and only(final.parent) == ["p.png"]

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(final, b"third")
    # the earlier file is intact and no temporary file is left behind
    assert final.read_bytes() == b"second" * 10_000 and only(final.parent) == ["p.png"]


def test_read_image_errors_and_16bit(tmp_path: Path) -> None:
    with pytest.raises(RasterReadError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CorruptFileError, match="bad.png"):
        read_image(bad)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty.jpg"):
        read_image(empty)
    sixteen = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    cv2.imwrite(str(tmp_path / "s.png"), sixteen)
    np.testing.assert_array_equal(read_image(tmp_path / "s.png"), np.round(sixteen / 257).astype(np.uint8))
    rgba = np.dstack([RGB[..., ::-1], np.full(GREY.shape, 255, np.uint8)])  # BGRA on disk
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB)
    cv2.imwrite(str(tmp_path / "j.jpg"), GREY)
    assert read_image(tmp_path / "j.jpg").shape == GREY.shape


def test_geotiff_round_trip_deterministic(tmp_path: Path) -> None:
    t = (10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
    data = RNG.normal(size=(2, 300, 280)).astype(np.float32)
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    write_geotiff(a, data, transform=t, crs="EPSG:32615", nodata=-9999.0)
    write_geotiff(b, data, transform=t, crs=CRS.from_epsg(32615).to_wkt(), nodata=-9999.0)
    assert a.read_bytes() == b.read_bytes()
    with rasterio.open(a) as ds:
        np.testing.assert_array_equal(ds.read(), data)
        assert tuple(ds.transform)[:6] == t and ds.crs == CRS.from_epsg(32615) and ds.nodata == -9999.0
        assert ds.compression.name == "deflate" and ds.profile["tiled"]
    assert only(tmp_path) == ["a.tif", "b.tif"]  # no temporary files, no .aux.xml


def test_geotiff_layouts_and_plain(tmp_path: Path) -> None:
    p = tmp_path / "rgb.tif"
    write_geotiff(p, RGB, transform=None, crs=None)
    with rasterio.open(p) as ds:
        assert ds.count == 3 and ds.crs is None and ds.transform.is_identity
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, 2), RGB)
    write_geotiff(p, GREY, transform=None, crs=None)
    with rasterio.open(p) as ds:
        np.testing.assert_array_equal(ds.read(1), GREY)
    with pytest.raises(InputError, match="CRS"):
        write_geotiff(p, GREY, transform=None, crs="not a crs")
    with pytest.raises(InputError, match="shape"):
        write_geotiff(p, np.zeros((2, 2, 2, 2), np.uint8), transform=None, crs=None)
