"""The dataset readers on tiny fake copies in each dataset's released layout."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from saropt.data import (
    SEN12,
    SEN12MS,
    GeoTiffPairs,
    OSDataset,
    QXSSaropt,
    SaroptDataset,
    collate_pairs,
    get_dataset,
    list_datasets,
)
from saropt.errors import CorruptFileError, DatasetNotFoundError, InputError
from tests.data import fixtures as _fixtures

fake_root = _fixtures.fake_root
qxs_copy = _fixtures.qxs_copy


def _check_sample(s: dict, c_sar: int, c_opt: int, size: int) -> None:
    assert s["sar"].dtype == torch.float32 and s["opt"].dtype == torch.float32
    assert tuple(s["sar"].shape) == (c_sar, size, size)
    assert tuple(s["opt"].shape) == (c_opt, size, size)
    for k in ("sar", "opt"):
        assert float(s[k].min()) >= 0.0 and float(s[k].max()) <= 1.0
        assert torch.isfinite(s[k]).all()
    m = s["meta"]
    assert isinstance(m["id"], str) and isinstance(m["scene"], str) and isinstance(m["index"], int)
    assert all(v is not None for v in m.values())


def _png(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img[:, :, ::-1] if img.ndim == 3 else img


def test_registry_lists_every_format() -> None:
    assert {"qxs-saropt", "sen1-2", "sen12ms", "osdataset", "saropt", "geotiff", "packed"} <= set(
        list_datasets()
    )
    with pytest.raises(InputError, match="unknown dataset format"):
        get_dataset("sen3", ".")


def test_qxs_reads_pairs_by_name_and_exact_values(fake_root: Path) -> None:
    ds = QXSSaropt(fake_root / "qxs")  # the parent of QXSLAB_SAROPT works
    assert len(ds) == 27
    assert len(QXSSaropt(fake_root / "qxs" / "QXSLAB_SAROPT")) == 27
    s = ds[4]
    _check_sample(s, 1, 3, 32)
    assert s["meta"]["id"] == "5" and s["meta"]["number"] == 5
    base = fake_root / "qxs" / "QXSLAB_SAROPT"
    sar3 = _png(base / "sar_256_oc_0.2" / "5.png")  # stored as three identical channels
    assert sar3.ndim == 3 and (sar3[..., 0] == sar3[..., 2]).all()
    np.testing.assert_allclose(s["sar"][0].numpy(), sar3[..., 0] / 255.0, atol=1e-6)
    np.testing.assert_allclose(
        s["opt"].numpy(), _png(base / "opt_256_oc_0.2" / "5.png").transpose(2, 0, 1) / 255.0, atol=1e-6
    )
    assert [r.id for r in ds.records[:12]] == [str(i) for i in range(1, 13)]  # natural order: 2 before 10
    assert tuple(QXSSaropt(fake_root / "qxs", opt_gray=True)[0]["opt"].shape) == (1, 32, 32)


def test_sen12_seasons_scenes_and_pairing(fake_root: Path) -> None:
    ds = SEN12(fake_root / "sen12")
    assert len(ds) == 4 * 2 * 3
    s = ds[0]
    _check_sample(s, 1, 3, 32)
    assert s["meta"]["id"] == "ROIs1158_spring_1_p1" and s["meta"]["scene"] == "ROIs1158_spring_1"
    assert ds.records[0].opt[0].endswith("s2_1/ROIs1158_spring_s2_1_p1.png")
    spring = SEN12(fake_root / "sen12", seasons=["spring"], scenes=[2])
    assert len(spring) == 3 and {r.scene for r in spring.records} == {"ROIs1158_spring_2"}
    assert len(SEN12(fake_root / "sen12", scenes=["ROIs1970_fall_1"])) == 3
    with pytest.raises(InputError, match="unknown season"):
        SEN12(fake_root / "sen12", seasons=["monsoon"])


def test_sen12ms_bands_split_and_scaling(fake_root: Path) -> None:
    root = fake_root / "sen12ms"
    train, test = SEN12MS(root), SEN12MS(root, split="test")
    assert len(train) == 8 and len(test) == 8
    assert {r.scene for r in test.records} == {
        "ROIs1158_spring_63",
        "ROIs1868_summer_43",
        "ROIs1970_fall_120",
        "ROIs2017_winter_64",
    }  # the official hold-out scenes
    s = train[0]
    _check_sample(s, 2, 3, 32)
    assert train.sar_bands == ("VV", "VH") and train.opt_bands == ("B04", "B03", "B02")
    import rasterio

    with rasterio.open(train.records[0].sar[0]) as src:
        vv = src.read(1)
    with rasterio.open(train.records[0].opt[0]) as src:
        b04 = src.read(4)
    expect = np.nan_to_num(np.clip((vv + 25.0) / 25.0, 0, 1), nan=0.0)
    np.testing.assert_allclose(s["sar"][0].numpy(), expect, atol=1e-6)  # NaN pixels -> 0
    assert np.isnan(vv).any()
    np.testing.assert_allclose(s["opt"][0].numpy(), b04 / 10000.0, atol=1e-6)
    nir = SEN12MS(root, s1_bands=["VH"], s2_bands=["B8", "B11"], lc=True, lc_bands=["IGBP"], split=None)
    s2 = nir[0]
    assert len(nir) == 16 and tuple(s2["sar"].shape) == (1, 32, 32) and nir.opt_bands == ("B08", "B11")
    assert s2["lc"].dtype == torch.int64 and tuple(s2["lc"].shape) == (1, 32, 32)
    with pytest.raises(InputError, match="unknown Sentinel-2 band"):
        SEN12MS(root, s2_bands=["B13"])
    geo = SEN12MS(root, georef=True)
    assert geo[0]["meta"]["crs"] == "EPSG:32737" and len(geo[0]["meta"]["bounds"]) == 4


def test_osdataset_sizes_and_splits(fake_root: Path) -> None:
    root = fake_root / "os"
    with pytest.raises(InputError, match="choose one with size"):
        OSDataset(root)
    tr = OSDataset(root, size=256)
    te = OSDataset(root, split="test", size=512)
    assert len(tr) == 4 and len(te) == 2
    _check_sample(tr[0], 1, 3, 32)
    _check_sample(te[0], 1, 3, 64)
    assert te[0]["meta"]["id"] == "test/5" and te[0]["meta"]["split"] == "test"
    assert len(OSDataset(root / "256", split=None)) == 6  # root = one size folder


def test_saropt_dataset_keep_and_split(fake_root: Path) -> None:
    root = fake_root / "saropt"
    train = SaroptDataset(root)
    every = SaroptDataset(root, split=None)
    with_rejected = SaroptDataset(root, split=None, keep_only=False)
    assert len(every) == 30 and len(with_rejected) == 32 and len(train) == 16
    assert len(SaroptDataset(root, split="all")) == 30
    assert {r.split for r in SaroptDataset(root, split="test").records} == {"test"}
    assert all(r.extra["keep"] for r in every.records)
    s = train[1]
    _check_sample(s, 1, 3, 32)
    assert s["meta"]["window"] == (16, 0, 32, 32) and s["meta"]["crs"] == "EPSG:32633"
    assert s["meta"]["bounds"][2] - s["meta"]["bounds"][0] == 32
    with pytest.raises(InputError, match="available: buffer, test, train"):
        SaroptDataset(root, split="val")


def test_geotiff_pairs_per_band_files_and_resampling(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import Affine

    def write(path: Path, arr: np.ndarray, res: float) -> None:
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=arr.shape[-1],
            height=arr.shape[-2],
            count=1,
            dtype=arr.dtype,
            crs="EPSG:32633",
            transform=Affine(res, 0, 0, 0, -res, 120),
        ) as dst:
            dst.write(arr, 1)

    rng = np.random.default_rng(0)
    write(tmp_path / "x_VV.tif", rng.uniform(-30, 0, (12, 12)).astype(np.float32), 10)
    write(tmp_path / "x_VH.tif", rng.uniform(-30, 0, (12, 12)).astype(np.float32), 10)
    write(tmp_path / "x_B04.tif", rng.integers(0, 3000, (12, 12)).astype(np.uint16), 10)
    write(tmp_path / "x_B01.tif", np.full((2, 2), 1000, np.uint16), 60)  # 60 m band: resampled to 10 m
    (tmp_path / "pairs.csv").write_text("id,sar_path,opt_path\nx,x_VV.tif;x_VH.tif,x_B04.tif;x_B01.tif\n")
    ds = GeoTiffPairs.from_csv(tmp_path / "pairs.csv", sar_range=(-25, 0), opt_range=(0, 10000))
    s = ds[0]
    assert tuple(s["sar"].shape) == (2, 12, 12) and tuple(s["opt"].shape) == (2, 12, 12)
    assert ds.sar_bands == ("VV", "VH") and ds.opt_bands == ("B04", "B01")
    np.testing.assert_allclose(s["opt"][1].numpy(), 0.1, atol=1e-6)
    assert s["meta"]["crs"] == "EPSG:32633" and s["meta"]["bounds"] == (0.0, 0.0, 120.0, 120.0)


def test_default_collate_and_collate_pairs(fake_root: Path) -> None:
    ds = SaroptDataset(fake_root / "saropt", split=None)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert tuple(batch["sar"].shape) == (4, 1, 32, 32) and batch["meta"]["id"] == ["0", "1", "3", "4"]
    b2 = collate_pairs([ds[0], ds[1]])
    assert tuple(b2["opt"].shape) == (2, 3, 32, 32) and b2["meta"][1]["id"] == "1"


def test_dataloader_workers(fake_root: Path) -> None:
    ds = SEN12(fake_root / "sen12")
    ids = [i for b in DataLoader(ds, batch_size=5, num_workers=2) for i in b["meta"]["id"]]
    assert sorted(ids) == sorted(r.id for r in ds.records)


def test_select_plot_and_transforms(fake_root: Path, tmp_path: Path) -> None:
    from saropt.data.transforms import center_crop

    ds = QXSSaropt(fake_root / "qxs", transforms=lambda s: center_crop(s, 16))
    assert tuple(ds[0]["sar"].shape) == (1, 16, 16)
    sub = ds.select([3, 5])
    assert len(sub) == 2 and sub[1]["meta"]["id"] == "6" and sub[1]["meta"]["index"] == 1
    ds.plot(tmp_path / "grid.png", ncols=2)
    assert (tmp_path / "grid.png").stat().st_size > 5000


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["qxs-saropt", "sen1-2", "sen12ms", "osdataset", "saropt"])
def test_missing_folder_names_layout(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(DatasetNotFoundError, match="expected layout"):
        get_dataset(fmt, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="expected layout"):
        get_dataset(fmt, tmp_path / "empty")


def test_partial_pairs_are_named(qxs_copy: Path, fake_root: Path, tmp_path: Path) -> None:
    (qxs_copy / "opt_256_oc_0.2" / "3.png").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"1 optical files .* missing \(3.png\)"):
        QXSSaropt(qxs_copy)
    import shutil

    shutil.copytree(fake_root / "sen12", tmp_path / "sen12")
    (tmp_path / "sen12" / "ROIs1868_summer" / "s2_2" / "ROIs1868_summer_s2_2_p3.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="ROIs1868_summer_s2_2_p3.png"):
        SEN12(tmp_path / "sen12")
    shutil.rmtree(tmp_path / "sen12" / "ROIs1970_fall" / "s2_1")
    with pytest.raises(DatasetNotFoundError, match="s2_1 is missing"):
        SEN12(tmp_path / "sen12", seasons=["fall"])


def test_corrupt_file_error_and_skip(qxs_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = qxs_copy / "sar_256_oc_0.2" / "2.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    ds = QXSSaropt(qxs_copy)
    with pytest.raises(CorruptFileError, match=str(bad)):
        ds[1]
    skipping = QXSSaropt(qxs_copy, skip_corrupt=True)
    with caplog.at_level(logging.WARNING):
        s = skipping[1]
    assert s["meta"]["id"] == "3" and "skipping corrupt pair 2" in caplog.text
    assert skipping.corrupt == {"2"}
