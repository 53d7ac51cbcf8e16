"""Packed shards (map-style and streaming, with workers), dataset info and the ``saropt data`` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from saropt.cli.main import main
from saropt.data import SEN12MS, OSDataset, PackedDataset, PackedStream, SaroptDataset, dataset_info, pack
from saropt.errors import CorruptFileError, DatasetNotFoundError, InputError, OutputExistsError
from tests.data import fixtures as _fixtures

fake_root = _fixtures.fake_root
qxs_copy = _fixtures.qxs_copy


@pytest.fixture(scope="module")
def packed(fake_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "shards"
    pack(SaroptDataset(fake_root / "saropt", split=None), out, shard_size=7)
    return out


def test_packed_dataset_equals_source(fake_root: Path, packed: Path) -> None:
    src = SaroptDataset(fake_root / "saropt", split=None)
    pk = PackedDataset(packed)
    assert len(pk) == len(src) == 30 and pk.verify() == []
    assert len(pk.manifest["shards"]) == 5 and pk.sar_bands == src.sar_bands
    for i in (0, 13, 29):
        a, b = pk[i], src[i]
        assert torch.equal(a["sar"], b["sar"]) and torch.equal(a["opt"], b["opt"])
        assert a["meta"]["id"] == b["meta"]["id"] and a["meta"]["window"] == b["meta"]["window"]
        assert a["meta"]["bounds"] == b["meta"]["bounds"] and a["meta"]["split"] == b["meta"]["split"]
    assert len(PackedDataset(packed, split="test")) == 7


def test_packed_sen12ms_keeps_float_db_and_lc(fake_root: Path, tmp_path: Path) -> None:
    src = SEN12MS(fake_root / "sen12ms", lc=True)
    pack(src, tmp_path / "p")
    pk = PackedDataset(tmp_path / "p")
    assert (
        pk.manifest["arrays"]["sar"]["dtype"] == "float32"
        and pk.manifest["arrays"]["opt"]["dtype"] == "uint16"
    )
    a, b = pk[3], src[3]
    for k in ("sar", "opt", "lc"):
        assert torch.equal(a[k], b[k]), k


def test_stream_covers_each_sample_once_with_workers(packed: Path) -> None:
    st = PackedStream(packed, batch_size=4, seed=5)
    ids = []
    for batch in DataLoader(st, batch_size=None, num_workers=2):
        assert batch["sar"].dtype == torch.float32 and batch["sar"].shape[1:] == (1, 32, 32)
        assert len(batch["meta"]["id"]) == batch["sar"].shape[0] <= 4
        ids += batch["meta"]["id"]
    assert sorted(ids, key=int) == sorted((r.id for r in st.dataset.records), key=int)


def test_stream_batches_match_map_style_and_shuffle_per_epoch(packed: Path) -> None:
    pk = PackedDataset(packed)
    st = PackedStream(packed, batch_size=6, seed=1)
    first = [i for b in st for i in b["meta"]["index"].tolist()]
    again = [i for b in st for i in b["meta"]["index"].tolist()]
    st.set_epoch(1)
    other = [i for b in st for i in b["meta"]["index"].tolist()]
    assert first == again and first != other and sorted(first) == sorted(other) == list(range(30))
    b = next(iter(st))
    j = int(b["meta"]["index"][2])
    assert torch.equal(b["opt"][2], pk[j]["opt"])
    raw_stream = PackedStream(packed, batch_size=6, seed=1, as_float=False)
    raw_stream.set_epoch(1)
    raw = next(iter(raw_stream))
    assert raw["opt"].dtype == torch.uint8
    scaled = st.scale(raw)
    torch.testing.assert_close(scaled["opt"], b["opt"], rtol=0, atol=0)
    via_loader = next(iter(st.loader(num_workers=0)))
    assert torch.equal(via_loader["sar"], b["sar"])


def test_pack_refuses_mixed_sizes_and_foreign_folders(fake_root: Path, tmp_path: Path, packed: Path) -> None:
    mixed = OSDataset(fake_root / "os" / "256", split=None)
    mixed.records += OSDataset(fake_root / "os" / "512", split=None).records
    with pytest.raises(InputError, match="pack one size"):
        pack(mixed, tmp_path / "m")
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.partial*"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        pack(mixed, tmp_path / "foreign")
    with pytest.raises(OutputExistsError, match="overwrite"):
        pack(SaroptDataset(fake_root / "saropt"), packed)


def test_verify_detects_damaged_shard(fake_root: Path, tmp_path: Path) -> None:
    pack(SaroptDataset(fake_root / "saropt"), tmp_path / "p", shard_size=8)
    shard = tmp_path / "p" / "shard-00001.opt.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert PackedDataset(tmp_path / "p").verify() == [str(shard)]
    with pytest.raises(DatasetNotFoundError, match="not a packed saropt folder"):
        PackedDataset(tmp_path)


def test_dataset_info_counts_ranges_and_corrupt(fake_root: Path, qxs_copy: Path) -> None:
    res = dataset_info("sen12ms", fake_root / "sen12ms")
    assert res.pairs == 16 and res.splits == {"test": 8, "train": 8} and res.ok
    assert res.arrays["sar"].dtype == ["float32"] and 0 < res.arrays["sar"].nan_fraction < 0.01
    assert res.arrays["sar"].min[0] < -20 and res.arrays["opt"].bands == ["B04", "B03", "B02"]
    sd = dataset_info("saropt", fake_root / "saropt")
    assert sd.splits == {"buffer": 7, "rejected": 2, "test": 7, "train": 16}
    bad = qxs_copy / "opt_256_oc_0.2" / "3.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(CorruptFileError, match="3.png"):
        dataset_info("qxs-saropt", qxs_copy)
    res = dataset_info("qxs-saropt", qxs_copy, skip_corrupt=True)
    assert res.pairs == 4 and [c["id"] for c in res.corrupt] == ["3"] and not res.ok


def test_cli_info_json(fake_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "info", "osdataset", str(fake_root / "os"), "--json", "-O", "size=512"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["pairs"] == 6 and doc["splits"] == {"test": 2, "train": 4} and doc["ok"]
    assert doc["arrays"]["opt"]["shapes"] == {"3x64x64": 6}
    main(["data", "info", "sen1-2", str(fake_root / "sen12")])
    out = capsys.readouterr().out
    assert "24 pairs" in out and "unsplit 24" in out and "uint8" in out


def test_cli_errors_exit_non_zero(tmp_path: Path, qxs_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "sen12ms", str(tmp_path / "missing")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("saropt: error:") and "expected layout" in err and "Traceback" not in err
    (qxs_copy / "sar_256_oc_0.2" / "2.png").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "qxs-saropt", str(qxs_copy), "--skip-corrupt", "--json"])
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["corrupt"][0]["id"] == "2"


def test_cli_pack_and_split(fake_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "data",
            "pack",
            "saropt",
            str(fake_root / "saropt"),
            "-o",
            str(tmp_path / "pk"),
            "--split",
            "train",
            "--shard-size",
            "5",
        ]
    )
    assert "packed 16 pairs into 4 shards" in capsys.readouterr().out
    assert len(PackedDataset(tmp_path / "pk")) == 16
    main(
        [
            "data",
            "split",
            "sen1-2",
            str(fake_root / "sen12"),
            "-o",
            str(tmp_path / "s.json"),
            "--method",
            "scene",
            "--fractions",
            "train=0.75,test=0.25",
        ]
    )
    out = capsys.readouterr().out
    assert "sha256" in out and (tmp_path / "s.json").is_file()
    shutil.rmtree(tmp_path / "pk")
