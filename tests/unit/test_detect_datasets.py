"""Ship dataset readers (VOC, COCO, YOLO, DOTA) on tiny fake datasets in the real layouts, and tiling."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.detection.boxes import box_iou, crop_boxes, polygons_to_boxes
from saropt.detection.datasets import (
    read_coco,
    read_dota,
    read_records,
    read_voc,
    read_voc_xml,
    read_yolo,
    subset,
)
from saropt.detection.tiling import load_image, tile_records, tile_starts, tile_windows
from saropt.errors import ConfigError, CorruptFileError, DatasetNotFoundError
from tests.unit.detectutil import BOXES, SIZES, make_coco, make_dota, make_scene, make_voc, make_yolo


def test_voc_boxes_convention_difficult_and_scene_types(tmp_path):
    root = make_voc(tmp_path / "VOC2007")
    recs = read_voc(root, "train")
    assert [r.name for r in recs] == ["000001", "000002"]
    assert [(r.width, r.height) for r in recs] == SIZES
    # VOC xmin..xmax 1-based inclusive -> pixel edges (xmin - 1, xmax): back to the boxes that were drawn
    np.testing.assert_allclose(recs[0].boxes, BOXES[0])
    np.testing.assert_allclose(recs[1].boxes, BOXES[1])
    assert recs[0].difficult.tolist() == [False, True]  # the 'harbour' object is not read
    assert [r.scene_type for r in recs] == ["inshore", "offshore"]
    assert len(read_voc(root, "train", difficult="drop")[0].boxes) == 1
    assert not read_voc(root, "train", difficult="keep")[0].difficult.any()
    assert [r.name for r in read_voc(root, "test")] == ["000002"]
    # pixels: the bright ship is inside the box, the sea outside is dark
    img = load_image(recs[0], "sar", 1)
    assert img.shape == (48, 64, 1)
    assert img[8:20, 10:30].mean() > 200 and img[25:29, 0:8].mean() < 120
    assert load_image(recs[0], "sar", 3).shape == (48, 64, 3)


def test_voc_errors(tmp_path):
    root = make_voc(tmp_path / "VOC2007")
    with pytest.raises(DatasetNotFoundError, match="available: test, train"):
        read_voc(root, "val")
    with pytest.raises(DatasetNotFoundError, match="not a VOC dataset"):
        read_voc(tmp_path, "train")
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object><name>ship</name><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    with pytest.raises(CorruptFileError, match="bndbox"):
        read_voc_xml(bad)
    (tmp_path / "broken.xml").write_text("<annotation>")
    with pytest.raises(CorruptFileError, match="cannot parse"):
        read_voc_xml(tmp_path / "broken.xml")
    with pytest.raises(ConfigError, match="unknown detection dataset format"):
        read_records("pascal", root, "train")
    with pytest.raises(ConfigError, match="difficult"):
        read_voc(root, "train", difficult="ignore")


def test_coco_yolo_dota_agree_with_truth(tmp_path):
    coco = read_coco(make_coco(tmp_path / "hrsid"), "train")
    yolo = read_yolo(make_yolo(tmp_path / "yolo"), "train")
    for recs in (coco, yolo):
        assert [(r.width, r.height) for r in recs] == SIZES
        for r, b in zip(recs, BOXES, strict=True):
            np.testing.assert_allclose(r.boxes, b, atol=1e-3)  # 'land' / class 3 are not ships
    dota = read_dota(make_dota(tmp_path / "dota"))
    assert [r.name for r in dota] == ["P0001"]  # P0002 has no ship
    np.testing.assert_allclose(dota[0].boxes, BOXES[0])
    assert dota[0].difficult.tolist() == [False, True]
    assert load_image(dota[0], "optical", 1).shape == (48, 64, 1)
    with pytest.raises(DatasetNotFoundError, match="not found"):
        read_coco(tmp_path / "hrsid", "val")


def test_dota_bad_line(tmp_path):
    root = make_dota(tmp_path / "dota")
    (root / "labelTxt" / "P0001.txt").write_text("1 2 3 ship\n")
    with pytest.raises(CorruptFileError, match="P0001.txt:1"):
        read_dota(root)


def test_polygons_iou_and_subset():
    np.testing.assert_allclose(polygons_to_boxes([[[2, 0], [4, 2], [2, 4], [0, 2]]]), [[0, 0, 4, 4]])
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])
    from saropt.detection.datasets import ShipRecord

    recs = [ShipRecord(i, str(i), "x", 1, 1, np.zeros((0, 4)), np.zeros(0, bool)) for i in range(10)]
    sub = subset(recs, 4, seed=1)
    assert [r.image_id for r in sub] == [0, 1, 2, 3] and len({r.name for r in sub}) == 4
    assert [r.name for r in sub] == [r.name for r in subset(recs, 4, seed=1)]
    assert len(subset(recs, 0)) == 10


def test_tile_windows_cover_and_stay_inside():
    assert tile_starts(100, 40, 30) == [0, 30, 60]
    assert tile_starts(30, 40, 30) == [0]
    wins = tile_windows(100, 70, 40, 0.25)
    covered = np.zeros((70, 100), bool)
    for w in wins:
        assert w.col_end <= 100 and w.row_end <= 70
        covered[w.row_off:w.row_end, w.col_off:w.col_end] = True
    assert covered.all()
    with pytest.raises(ConfigError, match="overlap"):
        tile_windows(100, 70, 40, 1.0)


def test_crop_boxes_clips_and_drops_remnants():
    boxes = np.array([[0, 0, 10, 10], [18, 0, 28, 10], [25, 5, 40, 9], [5, 5, 6, 6]], float)
    kept, idx = crop_boxes(boxes, 0, 0, 20, 20, min_area_fraction=0.3, min_size=2)
    # box 1 keeps 2/10 of its width (20%) -> dropped; box 2 is outside; box 3 is 1 px -> dropped
    assert idx.tolist() == [0]
    kept, idx = crop_boxes(boxes, 15, 0, 20, 20, min_area_fraction=0.3, min_size=2)
    assert idx.tolist() == [1, 2]
    np.testing.assert_allclose(kept, [[3, 0, 13, 10], [10, 5, 20, 9]])


def test_tile_records_16bit_scene(tmp_path):
    """A 16-bit scene is tiled; boxes are clipped per chip and pixels go through the dB stretch."""
    path = make_scene(tmp_path / "s.tif", [(100, 100, 120, 110)], size=(200, 160))
    from saropt.detection.datasets import ShipRecord

    rec = ShipRecord(0, "s", str(path), 200, 160, np.array([[100.0, 100.0, 120.0, 110.0]]), np.array([False]))
    chips = tile_records([rec], 128, 0.5)
    assert len(chips) == 6
    total = 0
    for c in chips:
        assert c.window is not None and (c.width, c.height) == (128, 128)
        for b in c.boxes:  # each kept box maps back onto the ship
            full = b + [c.window.col_off, c.window.row_off] * 2
            assert box_iou(full[None], rec.boxes)[0, 0] > 0.3
            total += 1
    assert total >= 2
    chip = next(c for c in chips if len(c.boxes) and c.boxes[0, 2] - c.boxes[0, 0] == 20)
    img = load_image(chip, "sar", 1)[:, :, 0]
    x1, y1 = int(chip.boxes[0, 0]), int(chip.boxes[0, 1])
    assert img[y1:y1 + 10, x1:x1 + 20].min() == 255  # the bright ship saturates the 99.5% stretch
    assert img.mean() < 200
