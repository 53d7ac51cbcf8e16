"""Benchmark the per-patch quality scores and the near-duplicate search.

    python benchmarks/quality.py                # real Sentinel-1/2 patches when ../shared/data exists, else synthetic
    python benchmarks/quality.py --threads 2    # OpenCV threads (default 1: the build runs one worker per core)

Reported: CPU and wall milliseconds per 256 px pair for :func:`saropt.quality.patch_scores` and for each score
alone, the near-duplicate search on 20,000 hashes (CPU seconds), side by side with the budget of the build
(< 4 ms per pair, < 2 s for 20k hashes). The machine may be shared: CPU time is what one idle core would take.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _pairs(n: int) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], str]:
    import cv2

    base = ROOT.parent / "shared" / "data" / "pairs" / "s1s2-1024"
    files = sorted((base / "sar").glob("*.png"))
    out = []
    if files:
        for f in files:
            sar = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            opt = cv2.cvtColor(cv2.imread(str(base / "opt" / f.name)), cv2.COLOR_BGR2RGB)
            for i in range(4):
                for j in range(4):
                    out.append(
                        (
                            np.ascontiguousarray(sar[i * 256 : i * 256 + 256, j * 256 : j * 256 + 256]),
                            np.ascontiguousarray(opt[i * 256 : i * 256 + 256, j * 256 : j * 256 + 256]),
                            np.ones((256, 256), bool),
                        )
                    )
                    if len(out) == n:
                        return out, f"real Sentinel-1/2 patches from {base}"
        return out, f"real Sentinel-1/2 patches from {base}"
    rng = np.random.default_rng(0)
    for _ in range(n):
        structure = cv2.GaussianBlur(rng.uniform(0, 255, (256, 256)), (0, 0), 6)
        sar = np.clip(structure * rng.gamma(1.0, 1.0, structure.shape), 0, 255).astype(np.uint8)
        opt = np.clip(np.stack([structure] * 3, -1) + rng.normal(0, 3, (256, 256, 3)), 0, 255).astype(
            np.uint8
        )
        out.append((sar, opt, np.ones((256, 256), bool)))
    return out, "synthetic patches (../shared/data not found)"


def _time(fn: Callable[[Any], Any], items: list[Any], reps: int = 3) -> tuple[float, float]:
    for item in items[:5]:
        fn(item)
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(reps):
        for item in items:
            fn(item)
    n = reps * len(items)
    return 1e3 * (time.process_time() - c0) / n, 1e3 * (time.perf_counter() - w0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    parser.add_argument("--pairs", type=int, default=200, help="number of patch pairs")
    args = parser.parse_args()

    import cv2

    from saropt.io.windows import Window
    from saropt.quality import QualityConfig, find_near_duplicates, patch_scores
    from saropt.quality.duplicates import phash
    from saropt.quality.prep import prepare_pair
    from saropt.quality.regcheck import check_prepared
    from saropt.quality.seamline import seamline_score
    from saropt.quality.texture import texture_scores

    cv2.setNumThreads(args.threads)
    pairs, source = _pairs(args.pairs)
    cfg = QualityConfig()
    print(f"{len(pairs)} pairs of 256 px: {source}; OpenCV threads: {args.threads}")
    cpu, wall = _time(lambda a: patch_scores(a[0], a[1], a[2], cfg), pairs)
    print(f"patch_scores (all filters)   {cpu:6.2f} ms CPU  {wall:6.2f} ms wall   budget 4 ms")
    prepared = [prepare_pair(*a) for a in pairs]
    rows = [
        ("prepare (blocks, noise)", lambda a: prepare_pair(*a), pairs),
        (
            "texture",
            lambda p: texture_scores(p.sar_blocks, p.sar_noise, p.opt_blocks.mean(axis=2), p.grey_noise),
            prepared,
        ),
        ("seamline", lambda p: seamline_score(p.sar_blocks, p.opt_blocks, p.sar_noise), prepared),
        (
            "regcheck",
            lambda p: check_prepared(p.work_sar, p.work_grey, p.work_valid, p.work_factor),
            prepared,
        ),
        ("phash x2", lambda p: (phash(p.work_sar), phash(p.work_grey)), prepared),
    ]
    for name, fn, items in rows:
        cpu, wall = _time(fn, items)
        print(f"  {name:27s}{cpu:6.2f} ms CPU  {wall:6.2f} ms wall")

    rng = np.random.default_rng(0)
    n = 20_000
    hashes = [(int(a), int(b)) for a, b in rng.integers(0, 2**63, (n, 2), dtype=np.int64)]
    groups = [f"scene{i // 2000}" for i in range(n)]
    windows = [Window((i % 50) * 205, ((i // 50) % 40) * 205, 256, 256) for i in range(n)]
    c0 = time.process_time()
    find_near_duplicates(hashes, groups, windows, cfg.duplicate_max_hamming)
    print(
        f"find_near_duplicates 20k (SAR, optical) hash pairs, max {cfg.duplicate_max_hamming} bits: "
        f"{time.process_time() - c0:.2f} s CPU   budget 2 s"
    )


if __name__ == "__main__":
    main()
