#!/usr/bin/env python3
"""Write a tiny fake SEN1-2 copy in the released layout.

Layout (Schmitt et al. 2018, mediatum.ub.tum.de/1436631)::

    ROIs1158_spring/s1_<k>/ROIs1158_spring_s1_<k>_p<j>.png   Sentinel-1, 8-bit grey
    ROIs1158_spring/s2_<k>/ROIs1158_spring_s2_<k>_p<j>.png   Sentinel-2 true colour, 8-bit RGB
    (likewise ROIs1868_summer, ROIs1970_fall, ROIs2017_winter)

Run as a script to write it beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.append(str(Path(__file__).resolve().parents[3]))
from tests.data._synth import opt_view, sar_view, scene_field, write_png  # noqa: E402

SEASONS = ("ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall", "ROIs2017_winter")


def generate(
    root: Path,
    size: int = 32,
    scenes: tuple[int, ...] = (1, 2),
    patches: int = 3,
    seasons: tuple[str, ...] = SEASONS,
) -> Path:
    """Write ``len(seasons) * len(scenes) * patches`` pairs under ``root`` and return it."""
    root = Path(root)
    for si, season in enumerate(seasons):
        for k in scenes:
            field = scene_field(1000 * si + k, size, size * (patches + 1) // 2 + size)
            for j in range(1, patches + 1):
                off = (j - 1) * size // 2
                win = field[:, off : off + size]
                write_png(
                    root / season / f"s1_{k}" / f"{season}_s1_{k}_p{j}.png", sar_view(win, seed=j + 7 * k)
                )
                write_png(root / season / f"s2_{k}" / f"{season}_s2_{k}_p{j}.png", opt_view(win))
    return root


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
