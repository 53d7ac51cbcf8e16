"""Matching pairs (positives, random and hard negatives) and leakage-free splits with frozen split files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from saropt.data import SEN12, SEN12MS, MatchingPairs, QXSSaropt, SaroptDataset, make_split, read_split_file
from saropt.data.splits import group_split, number_block_groups, select_split, spatial_block_split
from saropt.errors import CorruptFileError, InputError
from tests.data import fixtures as _fixtures

fake_root = _fixtures.fake_root


def _boxes(ds, idx):
    w = [ds.records[i].window for i in idx]
    return np.array([(c, r, c + ww, r + h) for c, r, ww, h in w], float)


def test_ratio_labels_and_positive_content(fake_root: Path) -> None:
    ds = SaroptDataset(fake_root / "saropt", split=None)
    mp = MatchingPairs(ds, negative_ratio=1.0, seed=0)
    assert len(mp) == 60 and mp.labels().sum() == 30
    pos = mp[3]
    assert pos["label"] == 1 and pos["meta"]["negative"] == "" and pos["meta"]["offset"] == 0.0
    torch.testing.assert_close(pos["opt"], ds[3]["opt"])
    neg = mp[30 + 5]
    a, b = neg["meta"]["sar_index"], neg["meta"]["opt_index"]
    assert neg["label"] == 0 and a != b
    torch.testing.assert_close(neg["sar"], ds[a]["sar"])
    torch.testing.assert_close(neg["opt"], ds[b]["opt"])
    assert len(MatchingPairs(ds, negative_ratio=2.5)) == 30 + 75
    assert len(MatchingPairs(ds, negative_ratio=0)) == 30
    with pytest.raises(InputError):
        MatchingPairs(ds, negative_ratio=-1)


def test_negatives_are_deterministic_per_seed_and_epoch(fake_root: Path) -> None:
    ds = SaroptDataset(fake_root / "saropt", split=None)
    p1, p2, p3 = (MatchingPairs(ds, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(p1.plan()[1], p2.plan()[1])
    assert not np.array_equal(p1.plan()[1], p3.plan()[1])
    before = p1.plan()[1].copy()
    p1.set_epoch(1)
    assert not np.array_equal(before, p1.plan()[1])
    p1.set_epoch(0)
    np.testing.assert_array_equal(before, p1.plan()[1])


def test_random_negatives_never_overlap_their_anchor(fake_root: Path) -> None:
    ds = SaroptDataset(fake_root / "saropt", split=None)
    for seed in range(5):
        anchors, partners, kinds, _ = MatchingPairs(ds, seed=seed, negative_ratio=3).plan()
        assert (anchors != partners).all() and (kinds == 0).all()
        for a, p in zip(anchors, partners):
            if ds.records[a].scene == ds.records[p].scene:
                A, P = _boxes(ds, [a, p])
                assert not (P[0] < A[2] and A[0] < P[2] and P[1] < A[3] and A[1] < P[3])


def test_hard_negatives_are_near_non_overlapping_same_scene(fake_root: Path) -> None:
    ds = SaroptDataset(fake_root / "saropt", split=None)
    anchors, partners, kinds, offsets = MatchingPairs(ds, hard=True, hard_k=3, seed=1).plan()
    assert (kinds == 1).all()
    for a, p in zip(anchors, partners):
        assert ds.records[a].scene == ds.records[p].scene
        A, P = _boxes(ds, [a, p])
        assert not (P[0] < A[2] and A[0] < P[2] and P[1] < A[3] and A[1] < P[3])
    _, _, _, rand_offsets = MatchingPairs(ds, seed=1).plan()
    # patches are 32 px with stride 16: the nearest non-overlapping neighbours are 32..~45 px away
    assert offsets.max() <= 48 and offsets.mean() < np.where(rand_offsets < 0, 1e9, rand_offsets).mean()
    far = MatchingPairs(ds, hard=True, min_offset=40, seed=1).plan()[3]
    assert far.min() >= 40


def test_hard_negatives_fall_back_to_ordinal_neighbours(fake_root: Path) -> None:
    ds = SEN12(fake_root / "sen12")
    anchors, partners, kinds, offsets = MatchingPairs(ds, hard=True, ordinal_gap=(2, 2), seed=0).plan()
    assert set(kinds) == {0, 2} and (offsets == -1).all()
    for a, p, k in zip(anchors, partners, kinds):
        ra, rp = ds.records[a], ds.records[p]
        if k == 2:
            assert ra.scene == rp.scene and abs(ra.extra["patch"] - rp.extra["patch"]) == 2
        else:  # the middle of 3 patches has no neighbour 2 away: random fallback
            assert ra.extra["patch"] == 2 and a != p
    mq = MatchingPairs(QXSSaropt(fake_root / "qxs"), hard=True, ordinal_gap=(1, 3))
    a, p, k, _ = mq.plan()
    nums = np.array([r.extra["number"] for r in mq.dataset.records])
    gaps = np.abs(nums[a] - nums[p])
    assert (gaps >= 1).all() and (gaps <= 3).all()
    assert mq[len(mq) - 1]["meta"]["negative"] == "ordinal"


def test_group_split_keeps_groups_whole_and_near_fractions() -> None:
    groups = [f"g{i // 7}" for i in range(700)]
    splits = group_split(groups, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, splits):
        by_group.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert abs(counts["train"] - 560) <= 7 and abs(counts["val"] - 70) <= 7 and abs(counts["test"] - 70) <= 7
    assert splits == group_split(groups, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    with pytest.raises(InputError):
        group_split(groups, {"train": -1})


def test_spatial_block_split_has_no_overlap_between_splits(fake_root: Path) -> None:
    from saropt.data.base import PairRecord

    recs = [
        PairRecord(f"{s}-{r}-{c}", s, ("a",), ("b",), window=(c * 16, r * 16, 32, 32))
        for s in ("A", "B")
        for r in range(12)
        for c in range(12)
    ]
    splits = spatial_block_split(recs, block_size=64, seed=0)
    assert {"train", "val", "test", "buffer"} <= set(splits)
    box = {r.id: r.window for r in recs}
    kept = [(r, s) for r, s in zip(recs, splits) if s != "buffer"]
    for r1, s1 in kept:
        c1, y1, w1, h1 = box[r1.id]
        for r2, s2 in kept:
            if s1 == s2 or r1.scene != r2.scene:
                continue
            c2, y2, w2, h2 = box[r2.id]
            assert not (c1 < c2 + w2 and c2 < c1 + w1 and y1 < y2 + h2 and y2 < y1 + h1), (r1.id, r2.id)


def test_sen12ms_official_split_and_frozen_scene_split(fake_root: Path, tmp_path: Path) -> None:
    ds = SEN12MS(fake_root / "sen12ms", split=None)
    off = make_split(ds, "official")
    assert off.counts() == {"test": 8, "train": 8}
    sen12 = SEN12(fake_root / "sen12")
    sf = make_split(sen12, "scene", {"train": 0.5, "test": 0.5}, seed=1)
    path = sf.write(tmp_path / "split.json")
    back = read_split_file(path)
    assert back.sha256 == sf.sha256 and back.assignments == sf.assignments
    scenes_per_split: dict[str, set[str]] = {}
    for r in sen12.records:
        scenes_per_split.setdefault(sf.assignments[r.id], set()).add(r.scene)
    assert not (scenes_per_split["train"] & scenes_per_split["test"])
    test = SEN12(fake_root / "sen12", split="test", split_file=path)
    assert len(test) == back.counts()["test"] and {r.split for r in test.records} == {"test"}
    with pytest.raises(InputError, match="no official split"):
        make_split(sen12, "official")


def test_split_file_tamper_and_coverage(fake_root: Path, tmp_path: Path) -> None:
    sen12 = SEN12(fake_root / "sen12")
    path = make_split(sen12, "scene").write(tmp_path / "s.json")
    doc = json.loads(path.read_text())
    moved = doc["splits"]["train"].pop()
    doc["splits"].setdefault("test", []).append(moved)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptFileError, match="sha256"):
        read_split_file(tmp_path / "bad.json")
    small = make_split(SEN12(fake_root / "sen12", seasons=["spring"]), "scene").write(tmp_path / "small.json")
    with pytest.raises(InputError, match="does not list"):
        SEN12(fake_root / "sen12", split_file=small)
    with pytest.raises(InputError, match="no pairs in split 'val'"):
        select_split(sen12.records, "val")


def test_qxs_number_blocks(fake_root: Path) -> None:
    assert number_block_groups(["1", "499", "500", "1234"], 500) == ["n0", "n0", "n1", "n2"]
    qxs = QXSSaropt(fake_root / "qxs")
    sf = make_split(qxs, "numbers", {"train": 2, "test": 1}, number_block=9)
    assert set(sf.assignments.values()) == {"train", "test"}
    per_block: dict[int, set[str]] = {}
    for i, s in sf.assignments.items():
        per_block.setdefault(int(i) // 9, set()).add(s)
    assert all(len(v) == 1 for v in per_block.values())  # consecutive numbers stay together
    with pytest.raises(InputError):
        number_block_groups(["abc"])
