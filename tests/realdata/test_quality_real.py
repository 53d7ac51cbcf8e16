"""Quality filters on real Sentinel-1/Sentinel-2 pairs (../shared/data/pairs/s1s2-1024, Los Angeles).

Figures asserted here were measured on this data: open sea (tiles 059, 101, 102) scores at most 3.2 structure
bits, land at least 4.2; tiles 130 and 142 show the same ground (identical optical, another SAR acquisition);
the registration check follows a known extra shift of the optical to within a fraction of a pixel.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from saropt.io.windows import Window
from saropt.quality import QualityConfig, decide, find_near_duplicates, patch_scores

P = 256


def _pair(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    base = root / "pairs" / "s1s2-1024"
    sar = cv2.imread(str(base / "sar" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    opt = cv2.imread(str(base / "opt" / f"{name}.png"), cv2.IMREAD_COLOR)
    if sar is None or opt is None:
        pytest.skip(f"s1s2-1024 pair {name} not found under {base}")
    return sar, cv2.cvtColor(opt, cv2.COLOR_BGR2RGB)


def _tile(img: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.ascontiguousarray(img[i * P : (i + 1) * P, j * P : (j + 1) * P])


def test_open_sea_is_textureless_and_land_is_not(shared_data: Path) -> None:
    sar, opt = _pair(shared_data, "059")
    for i, j in [(1, 0), (2, 0), (3, 0), (3, 1)]:  # open sea west of the coast
        scores = patch_scores(_tile(sar, i, j), _tile(opt, i, j), None)
        assert scores["texture"] < 3.5 and decide(scores)[0]["texture"], (i, j, scores["texture"])
    sar, opt = _pair(shared_data, "061")  # dense city
    for i in range(4):
        for j in range(4):
            scores = patch_scores(_tile(sar, i, j), _tile(opt, i, j), None)
            assert scores["texture"] > 4.0 and min(scores["texture_sar"], scores["texture_opt"]) > 3.5


def test_same_ground_in_two_tiles_is_a_near_duplicate(shared_data: Path) -> None:
    hashes, groups, windows = [], [], []
    for name in ("130", "142", "061"):
        sar, opt = _pair(shared_data, name)
        for i in range(4):
            for j in range(4):
                scores = patch_scores(_tile(sar, i, j), _tile(opt, i, j), None, QualityConfig(enabled=()))
                hashes.append(scores["phash_opt"])
                groups.append(name)
                windows.append(Window(j * P, i * P, P, P))
    dup = find_near_duplicates(hashes, groups, windows, QualityConfig().duplicate_max_hamming)
    # Every patch of 142 duplicates the patch at the same place in 130; nothing else is a duplicate.
    assert dup[16:32] == list(range(16))
    assert dup[:16] == [None] * 16 and dup[32:] == [None] * 16


def test_regcheck_follows_a_known_shift(shared_data: Path) -> None:
    diffs = []
    for name in ("020", "062", "089", "145"):
        sar, opt = _pair(shared_data, name)
        for i in range(3):
            for j in range(3):
                r0, c0 = 16 + 320 * i, 16 + 320 * j
                s = np.ascontiguousarray(sar[r0 : r0 + P, c0 : c0 + P])
                a = patch_scores(s, np.ascontiguousarray(opt[r0 : r0 + P, c0 : c0 + P]), None)
                b = patch_scores(s, np.ascontiguousarray(opt[r0 : r0 + P, c0 - 6 : c0 - 6 + P]), None)
                if (
                    np.isfinite(a["regcheck_dx"])
                    and np.isfinite(b["regcheck_dx"])
                    and abs(a["regcheck_dx"]) < 2
                ):
                    diffs.append((b["regcheck_dx"] - a["regcheck_dx"], b["regcheck_dy"] - a["regcheck_dy"]))
    d = np.array(diffs)
    assert len(d) >= 8
    # Moving the optical 6 px to the right moves the similarity peak by +6 px in x and not in y.
    assert np.median(d[:, 0]) == pytest.approx(6.0, abs=0.3)
    assert np.mean(np.abs(d[:, 0] - 6.0) < 1.0) >= 0.8
    assert np.median(np.abs(d[:, 1])) < 0.5
