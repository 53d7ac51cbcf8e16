#!/usr/bin/env python3
"""Write a tiny fake saropt dataset (the output of ``saropt build``): PNG patches plus ``index.parquet``.

Layout (DESIGN.md, "Output layout")::

    sar_<P>_oc_<o>/<n>.png, opt_<P>_oc_<o>/<n>.png     kept pairs
    rejected/sar_<P>_oc_<o>/<n>.png, rejected/opt_...  rejected pairs
    index.parquet                                      one row per pair (saropt.dataset.index columns)

Two scenes are cut into a grid with 50% overlap; splits are spatial: the left columns are train, the right
column test, the column between them buffer; a few pairs are rejected (keep = False, split = "").
Run as a script to write it beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.append(str(Path(__file__).resolve().parents[3]))
from tests.data._synth import opt_view, sar_view, scene_field, write_png  # noqa: E402

CRS_WKT_32633 = "EPSG:32633"


def generate(
    root: Path,
    size: int = 32,
    grid: int = 4,
    scenes: tuple[str, ...] = ("scene_a", "scene_b"),
    reject: tuple[int, ...] = (2, 7),
) -> Path:
    """Write the fake dataset under ``root`` and return it; ``reject``: patch ids flagged as rejected."""
    root = Path(root)
    stride = size // 2
    overlap = round(1 - stride / size, 2)
    sar_dir, opt_dir = f"sar_{size}_oc_{overlap}", f"opt_{size}_oc_{overlap}"
    rows = []
    pid = 0
    for si, scene in enumerate(scenes):
        extent = stride * (grid - 1) + size
        field = scene_field(77 + si, extent, extent)
        for r in range(grid):
            for c in range(grid):
                win = field[r * stride : r * stride + size, c * stride : c * stride + size]
                keep = pid not in reject
                prefix = "" if keep else "rejected/"
                sar_path, opt_path = f"{prefix}{sar_dir}/{pid}.png", f"{prefix}{opt_dir}/{pid}.png"
                write_png(root / sar_path, sar_view(win, seed=pid))
                write_png(root / opt_path, opt_view(win))
                split = (
                    "" if not keep else ("train" if c < grid - 2 else "buffer" if c == grid - 2 else "test")
                )
                x0, y0 = 500000.0 + 10000.0 * si, 4000000.0
                rows.append(
                    {
                        "patch_id": pid,
                        "sar_path": sar_path,
                        "opt_path": opt_path,
                        "sar_tif": None,
                        "opt_tif": None,
                        "scene_id": scene,
                        "subregion": "full",
                        "col_off": c * stride,
                        "row_off": r * stride,
                        "width": size,
                        "height": size,
                        "minx": x0 + c * stride,
                        "maxx": x0 + c * stride + size,
                        "miny": y0 - (r * stride + size),
                        "maxy": y0 - r * stride,
                        "crs": CRS_WKT_32633,
                        "transform_model": "identity",
                        "registration_method": "identity",
                        "registration_rmse_px": 0.0,
                        "registration_loo_rmse_px": None,
                        "nodata_frac": 0.0,
                        "entropy": 5.0,
                        "flag_nodata": False,
                        "flag_texture": not keep,
                        "duplicate_of": None,
                        "reject_reasons": "" if keep else "texture: low entropy",
                        "keep": keep,
                        "split": split,
                    }
                )
                pid += 1
    _write_index(root / "index.parquet", rows)
    return root


def _write_index(path: Path, rows: list[dict]) -> None:
    try:
        from saropt.dataset.index import write_index
    except ImportError:  # the dataset package is not there yet: plain pandas
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
        return
    write_index(path, rows, score_names=["nodata_frac", "entropy"], flag_names=["nodata", "texture"])


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
