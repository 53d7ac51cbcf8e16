#!/usr/bin/env python3
"""Write a tiny fake QXS-SAROPT copy in the released layout.

Layout (Huang et al. 2021, github.com/yaoxu008/QXS-SAROPT)::

    QXSLAB_SAROPT/sar_256_oc_0.2/<n>.png    SAR, 8-bit, stored as three identical channels
    QXSLAB_SAROPT/opt_256_oc_0.2/<n>.png    optical, 8-bit RGB

Patches are cut row by row with 20% overlap from a few fake "city" scenes and numbered consecutively from 1,
so neighbouring file numbers are spatial neighbours (the assumption behind the file-number grouping).
Run as a script to write it beside this file: ``python tests/data/qxs_saropt/data.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.append(str(Path(__file__).resolve().parents[3]))
from tests.data._synth import opt_view, sar_view, scene_field, write_png  # noqa: E402


def generate(
    root: Path, size: int = 32, cities: int = 3, grid: int = 3, sar_channels: int = 3, folder_size: int = 256
) -> Path:
    """Write ``cities * grid * grid`` pairs of ``size`` px under ``root/QXSLAB_SAROPT`` and return that
    folder."""
    base = Path(root) / "QXSLAB_SAROPT"
    sar_dir = base / f"sar_{folder_size}_oc_0.2"
    opt_dir = base / f"opt_{folder_size}_oc_0.2"
    stride = int(round(size * 0.8))
    n = 1
    for city in range(cities):
        extent = stride * (grid - 1) + size
        field = scene_field(100 + city, extent, extent)
        for r in range(grid):
            for c in range(grid):
                win = field[r * stride : r * stride + size, c * stride : c * stride + size]
                sar = sar_view(win, seed=n)
                write_png(
                    sar_dir / f"{n}.png", np.repeat(sar[:, :, None], 3, 2) if sar_channels == 3 else sar
                )
                write_png(opt_dir / f"{n}.png", opt_view(win))
                n += 1
    return base


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
