"""Quality filters on real Sentinel-1/Sentinel-2 pairs (../shared/data/pairs/s1s2-1024, Los Angeles).

Figures asserted here were measured on this data: open sea (tiles 059, 101, 102) scores at most 3.2 structure
bits, land at least 4.2; tiles 130 and 142 show the same ground (identical optical, another SAR acquisition);
the registration check follows a known extra shift of the optical to within a fraction of a pixel; seams
injected into real scenes (GaoFen-3 + Maxar at 1 m, Sentinel-1/2 at 10 m) separate from the clean patches.
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


def test_seamline_on_real_scenes_with_injected_seams(shared_data: Path) -> None:
    """False alarms on real scenes as they are, detection of seams added to their optical (seam_trials).

    Measured (benchmarks/seamline_real.py, 3 seams per scene and offset): at the default seamline_max of 25,
    Omaha (its optical footprint) flags 2.2% of its clean patches and 10% / 74% of those crossed by +-40 / +-60
    seams (ROC area 0.92 / 0.98); the 41 Sentinel-1/2 scenes 0.3% and 38% / 85% (0.96 / 0.99). Judged alone,
    without the scene as context, Omaha's patches are flagged 15% of the time. Here: Omaha with 3 seams per
    offset and 8 Sentinel scenes with 2.
    """
    import glob

    from saropt.dataset.config import config_from_dict
    from saropt.dataset.plan import resolve_plan
    from saropt.dataset.units import read_region
    from saropt.quality.seam_trials import SeamTrials, seam_trials

    omaha = shared_data / "scenes" / "omaha-gf3-worldview"
    s1s2 = shared_data / "pairs" / "s1s2-1024"
    names = sorted(p.name for p in (s1s2 / "opt").glob("*.png"))[:8]
    sar, opt = glob.glob(str(omaha / "GF3_*.tiff")), glob.glob(str(omaha / "18APR24*.tiff"))
    if not (sar and opt and len(names) == 8):
        pytest.skip("omaha-gf3-worldview or s1s2-1024 not found")
    groups = {
        "omaha": [{"id": "omaha", "sar": sar[0], "optical": opt[0], "sar_nodata": 0, "optical_nodata": 0}],
        "s1s2": [
            {
                "id": n[:-4],
                "sar": str(s1s2 / "sar" / n),
                "optical": str(s1s2 / "opt" / n),
                "tiepoints": "identity",
            }
            for n in names
        ],
    }
    # measured: omaha 180 clean / 42 crossed patches, FA 0.022, detected 0.10 / 0.74, AUC 0.92 / 0.98;
    # s1s2 392 / 62, FA 0.005, detected 0.27 / 0.82, AUC 0.94 / 0.98
    bounds = {"omaha": (3, 64, 0.05), "s1s2": (2, 128, 0.02)}  # trials, stride, most false alarms
    for group, scenes in groups.items():
        trials, stride, max_fa = bounds[group]
        plan = resolve_plan(config_from_dict({"scenes": scenes, "patch_size": P, "stride": P}))
        r, alone = SeamTrials(), SeamTrials()
        for i in range(len(scenes)):
            _, a = read_region(plan, i)
            r.extend(
                seam_trials(
                    a.sar_u8, a.opt_u8, a.valid, stride=stride, offsets=(40, 60), trials=trials, seed=i
                )
            )
            if group == "omaha":
                alone.extend(seam_trials(a.sar_u8, a.opt_u8, a.valid, stride=64, trials=0, context=False))
        assert r.clean.size >= 150 and r.seam[40.0].size >= 35, (group, r.clean.size, r.seam[40.0].size)
        assert r.false_alarm(25.0) <= max_fa, (group, r.false_alarm(25.0))
        assert r.auc(40.0) >= 0.88 and r.auc(60.0) >= 0.93, (group, r.auc(40.0), r.auc(60.0))
        assert r.detection(60.0, 25.0) >= 0.55 and r.detection(40.0, 25.0) <= r.detection(60.0, 25.0)
        if group == "omaha":
            # the context is what keeps the false alarms down on real 1 m imagery (0.15 judged alone)
            assert alone.false_alarm(25.0) >= 0.08, alone.false_alarm(25.0)
