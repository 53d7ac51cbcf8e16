"""Tiled scene prediction: cross-tile merging, GeoJSON (georeferenced and not), overview PNG.

A stand-in "detector" finds bright blobs by thresholding each tile, so the expected ships are known exactly and
the tiling, merging and coordinate logic is tested without training a network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from saropt.detection.models import DetectorSpec
from saropt.detection.predict import predict_scene, write_geojson, write_overview
from saropt.errors import ConfigError
from tests.unit.detectutil import make_scene

SHIPS = [(20, 30, 44, 40), (118, 60, 134, 90), (250, 180, 270, 190), (60, 150, 72, 158)]  # x1, y1, x2, y2


class BlobDetector(torch.nn.Module):
    """Boxes of connected bright regions (> 0.9) of each tile, score 0.9."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = DetectorSpec(backbone="test_resnet")
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        from scipy import ndimage

        out = []
        for im in images:
            lab, _n = ndimage.label(im[0].numpy() > 0.9)
            boxes = [[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop] for sl in ndimage.find_objects(lab)]
            b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            out.append({"boxes": b, "scores": torch.full((len(b),), 0.9), "labels": torch.ones(len(b), dtype=torch.int64)})
        return out


@pytest.mark.parametrize("merge", ["nms", "wbf"])
def test_ships_split_by_tiles_are_found_once(tmp_path, merge):
    path = make_scene(tmp_path / "scene.tif", SHIPS)
    # 96 px tiles with 50% overlap: the ship at x 118-134 is cut by several tile edges
    pred = predict_scene(BlobDetector(), path, tile=96, overlap=0.5, merge=merge)
    assert pred.tiles == 6 * 4  # columns 0, 48, 96, 144, 192, 204; rows 0, 48, 96, 124
    got = pred.detections.boxes[np.lexsort((pred.detections.boxes[:, 0], pred.detections.boxes[:, 1]))]
    want = np.array(sorted(SHIPS, key=lambda b: (b[1], b[0])), dtype=float)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_geojson_pixel_and_map_coordinates(tmp_path):
    plain = make_scene(tmp_path / "plain.tif", SHIPS)
    pred = predict_scene(BlobDetector(), plain, tile=128, overlap=0.25)
    out = write_geojson(pred, tmp_path / "ships.geojson", {"checkpoint": "x"})
    gj = json.loads(out.read_text())
    assert gj["type"] == "FeatureCollection" and gj["properties"]["coordinates"] == "pixel"
    assert len(gj["features"]) == gj["properties"]["ships"] == 4
    f = next(f for f in gj["features"] if f["properties"]["pixel_box"][0] == 20.0)
    assert f["geometry"]["type"] == "Polygon"
    assert f["geometry"]["coordinates"][0][0] == [20.0, 30.0] and f["geometry"]["coordinates"][0][2] == [44.0, 40.0]
    assert f["properties"]["score"] == 0.9 and f["properties"]["pixel_box"] == [20.0, 30.0, 44.0, 40.0]

    geo = make_scene(tmp_path / "geo.tif", SHIPS, georef=True)
    pred = predict_scene(BlobDetector(), geo, tile=128, overlap=0.25)
    gj = json.loads(write_geojson(pred, tmp_path / "geo.geojson").read_text())
    assert gj["properties"]["coordinates"] == "lon/lat EPSG:4326"
    f = next(f for f in gj["features"] if f["properties"]["pixel_box"][0] == 20.0)
    ring = np.array(f["geometry"]["coordinates"][0])
    # UTM 31N, origin (500000, 5600000), 10 m pixels: pixel-edge x 20 -> E 500200, y 30 -> N 5599700
    from rasterio.warp import transform

    lon, lat = transform("EPSG:32631", "EPSG:4326", [500200.0, 500440.0], [5599700.0, 5599600.0])
    np.testing.assert_allclose(ring[0], [lon[0], lat[0]], atol=1e-7)
    np.testing.assert_allclose(ring[2], [lon[1], lat[1]], atol=1e-7)
    png = write_overview(pred, tmp_path / "overview.png")
    from saropt.io.images import read_image

    img = read_image(png)
    assert img.shape == (220, 300, 3)
    assert tuple(img[30, 20]) == (255, 25, 0)  # the box outline, coloured by score 0.9


def test_bad_parameters(tmp_path):
    path = make_scene(tmp_path / "s.tif", SHIPS, size=(64, 64))
    with pytest.raises(ConfigError, match="tile"):
        predict_scene(BlobDetector(), path, tile=8)
    with pytest.raises(ConfigError, match="merge"):
        predict_scene(BlobDetector(), path, merge="union")
