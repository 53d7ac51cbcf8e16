"""Train/val/test splits: no overlapping patches across splits, fractions, determinism, warnings."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saropt.dataset.splits import assign_splits, split_summary
from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.tiling.grid import patch_grid

REAL = {"train", "val", "test"}


def grid_patches(
    scenes: list[tuple[str, int, int]], size: int, stride: int
) -> tuple[list[str], list[Window]]:
    groups: list[str] = []
    windows: list[Window] = []
    for name, w, h in scenes:
        for win in patch_grid(Window(0, 0, w, h), size, stride):
            groups.append(name)
            windows.append(win)
    return groups, windows


def leaks(groups: list[str], windows: list[Window], labels: list[str]) -> list[tuple[int, int]]:
    """All pairs of overlapping windows of one group in two different real splits (brute force)."""
    out = []
    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            if (
                groups[i] == groups[j]
                and labels[i] in REAL
                and labels[j] in REAL
                and labels[i] != labels[j]
                and windows[i].intersects(windows[j])
            ):
                out.append((i, j))
    return out


fractions_st = (
    st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
    .filter(lambda t: sum(t) > 0.05)
    .map(lambda t: tuple(x / sum(t) for x in t))
)


class TestBlock:
    @settings(deadline=None, max_examples=40)
    @given(
        size=st.integers(16, 64),
        overlap=st.sampled_from([0.0, 0.2, 0.5, 0.8]),
        n_scenes=st.integers(1, 3),
        fractions=fractions_st,
        block=st.one_of(st.none(), st.integers(20, 300)),
        seed=st.integers(0, 2**16),
        data=st.data(),
    )
    def test_no_overlap_across_splits(
        self, size: int, overlap: float, n_scenes: int, fractions: tuple, block: int | None, seed: int, data
    ) -> None:
        stride = max(1, round(size * (1 - overlap)))
        scenes = [
            (f"s{k}", data.draw(st.integers(size, 400)), data.draw(st.integers(size, 300)))
            for k in range(n_scenes)
        ]
        groups, windows = grid_patches(scenes, size, stride)
        # the keep mask from a drawn seed and share (a drawn list of one boolean per patch exceeds Hypothesis'
        # buffer for the largest grids: 8,000+ patches)
        share = data.draw(st.floats(0.0, 1.0))
        mask_rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        keep = (mask_rng.random(len(windows)) < share).tolist()
        labels = assign_splits(groups, windows, keep, fractions=fractions, block_size=block, seed=seed)
        assert leaks(groups, windows, labels) == []
        assert all((lab == "") == (not k) for lab, k in zip(labels, keep))
        for lab, f in zip(("train", "val", "test"), fractions):
            if f == 0:
                assert lab not in labels

    def test_fractions_met(self) -> None:
        groups, windows = grid_patches([("a", 4096, 4096), ("b", 3000, 5000), ("c", 5000, 2500)], 256, 205)
        keep = [True] * len(windows)
        labels = assign_splits(groups, windows, keep, seed=3)
        s = split_summary(labels)
        n = len(windows)
        assert s["rejected"] == 0 and sum(s[k] for k in ("train", "val", "test", "buffer")) == n
        # Blocks of ~25 patches are assigned whole, so shares are met within about a block. The buffer comes
        # out of the earlier splits: test keeps its share, val loses a little, train most (at 20% overlap and
        # 4-patch blocks about 15-18% of the patches straddle a boundary to a later split).
        assert abs(s["test"] / n - 0.15) < 0.03
        assert 0.10 < s["val"] / n < 0.16
        assert abs((s["train"] + s["buffer"]) / n - 0.70) < 0.05
        assert s["buffer"] < 0.25 * n
        assert leaks(groups, windows, labels) == []

    def test_deterministic_and_order_independent(self) -> None:
        groups, windows = grid_patches([("a", 2000, 2000), ("b", 1500, 1500)], 128, 100)
        keep = [i % 7 != 0 for i in range(len(windows))]
        a = assign_splits(groups, windows, keep, seed=5)
        assert a == assign_splits(groups, windows, keep, seed=5)
        assert a != assign_splits(groups, windows, keep, seed=6)
        perm = np.random.default_rng(0).permutation(len(windows))
        b = assign_splits(
            [groups[p] for p in perm], [windows[p] for p in perm], [keep[p] for p in perm], seed=5
        )
        assert [b[k] for k in np.argsort(perm)] == a

    def test_default_block_is_four_patches(self) -> None:
        groups, windows = grid_patches([("a", 4096, 4096)], 256, 256)
        keep = [True] * len(windows)
        assert assign_splits(groups, windows, keep) == assign_splits(groups, windows, keep, block_size=1024)
        # Without overlap there is no buffer, and each 1024 px block holds 4 x 4 patches of one split.
        labels = assign_splits(groups, windows, keep)
        assert "buffer" not in labels
        for bx in range(4):
            for by in range(4):
                inside = {
                    lab
                    for lab, w in zip(labels, windows)
                    if w.col_off // 1024 == bx and w.row_off // 1024 == by
                }
                assert len(inside) == 1

    def test_small_scene_gets_smaller_blocks(self) -> None:
        # 1536 px at 4 x 256 px blocks would give 4 blocks; the default halves the block to reach the fractions.
        groups, windows = grid_patches([("a", 1536, 1536)], 256, 205)
        keep = [True] * len(windows)
        labels = assign_splits(groups, windows, keep)
        assert labels == assign_splits(groups, windows, keep, block_size=512)
        counts = split_summary(labels)
        assert counts["train"] > counts["val"] and counts["train"] > counts["test"]

    def test_nothing_kept(self) -> None:
        groups, windows = grid_patches([("a", 600, 600)], 256, 205)
        assert assign_splits(groups, windows, [False] * len(windows)) == [""] * len(windows)


class TestScene:
    def test_whole_scenes(self) -> None:
        scenes = [(f"s{k}", 800, 800) for k in range(20)]
        groups, windows = grid_patches(scenes, 256, 205)
        labels = assign_splits(groups, windows, [True] * len(windows), method="scene", seed=1)
        per_scene: dict[str, set[str]] = {}
        for g, lab in zip(groups, labels):
            per_scene.setdefault(g, set()).add(lab)
        assert all(len(v) == 1 for v in per_scene.values())
        s = split_summary(labels)
        assert s["buffer"] == 0
        assert (s["train"], s["val"], s["test"]) == (14 * 9, 3 * 9, 3 * 9)

    def test_fixed_scene_splits(self) -> None:
        groups, windows = grid_patches([("a", 600, 600), ("b", 600, 600), ("c", 600, 600)], 256, 205)
        keep = [g != "c" for g in groups]  # scene c has no kept patch: it needs no split
        fixed = {"a": "test", "b": "train"}
        labels = assign_splits(groups, windows, keep, method="scene", scene_splits=fixed)
        assert labels == [fixed.get(g, "") if k else "" for g, k in zip(groups, keep)]
        with pytest.raises(InputError, match="scenes b have kept patches but no split"):
            assign_splits(groups, windows, keep, method="scene", scene_splits={"a": "val"})

    def test_too_few_scenes_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        groups, windows = grid_patches([("a", 600, 600), ("b", 600, 600)], 256, 205)
        with caplog.at_level(logging.WARNING, logger="saropt.dataset.splits"):
            labels = assign_splits(groups, windows, [True] * len(windows), method="scene")
        assert "test stay empty" in caplog.text
        assert set(labels) == {"train", "val"}


class TestRandom:
    def test_warns_and_meets_fractions(self, caplog: pytest.LogCaptureFixture) -> None:
        groups, windows = grid_patches([("a", 5000, 5000)], 64, 32)
        with caplog.at_level(logging.WARNING, logger="saropt.dataset.splits"):
            labels = assign_splits(groups, windows, [True] * len(windows), method="random", seed=2)
        assert "leak" in caplog.text
        s = split_summary(labels)
        n = len(windows)
        assert abs(s["train"] / n - 0.7) < 0.02 and abs(s["test"] / n - 0.15) < 0.02 and s["buffer"] == 0
        assert labels == assign_splits(groups, windows, [True] * len(windows), method="random", seed=2)


class TestErrors:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"method": "kfold"},
            {"fractions": (0.5, 0.5, 0.5)},
            {"fractions": (1.2, -0.1, -0.1)},
            {"fractions": (0.5, 0.5)},
            {"fractions": ("a", 0, 1)},
            {"block_size": 0},
            {"block_size": 2.5},
        ],
    )
    def test_invalid(self, kwargs: dict) -> None:
        groups, windows = grid_patches([("a", 600, 600)], 256, 205)
        with pytest.raises(InputError):
            assign_splits(groups, windows, [True] * len(windows), **kwargs)

    def test_length_mismatch(self) -> None:
        with pytest.raises(InputError):
            assign_splits(["a"], [Window(0, 0, 1, 1)], [True, False])

    def test_summary(self) -> None:
        assert split_summary(["train", "", "buffer", "test", "train"]) == {
            "train": 2,
            "val": 0,
            "test": 1,
            "buffer": 1,
            "rejected": 1,
        }
        with pytest.raises(InputError):
            split_summary(["training"])
