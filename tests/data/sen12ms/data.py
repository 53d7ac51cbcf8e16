#!/usr/bin/env python3
"""Write a tiny fake SEN12MS copy in the released layout (readable by saropt and by torchgeo).

Layout (Schmitt et al. 2019, mediatum.ub.tum.de/1474000; torchgeo tests/data/sen12ms)::

    ROIs1158_spring/s1_<k>/ROIs1158_spring_s1_<k>_p<j>.tif   2 bands VV, VH, float32 dB (a few NaN)
    ROIs1158_spring/s2_<k>/ROIs1158_spring_s2_<k>_p<j>.tif   13 bands, uint16 reflectance x 1e4
    ROIs1158_spring/lc_<k>/ROIs1158_spring_lc_<k>_p<j>.tif   4 bands, uint16 land-cover codes
    train_list.txt, test_list.txt                             s2 file names per split (SEN12MS toolbox)

Each season gets scene 1 and one of the official hold-out scenes, so both splits exist. Patches of a scene
overlap by half (stride size/2), georeferenced in EPSG:32737 at 10 m. Run as a script to write it beside this
file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.append(str(Path(__file__).resolve().parents[3]))
from tests.data._synth import opt_view, sar_db, scene_field  # noqa: E402

SEASONS = ("ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall", "ROIs2017_winter")
HOLDOUT = {"ROIs1158_spring": 63, "ROIs1868_summer": 43, "ROIs1970_fall": 120, "ROIs2017_winter": 64}


def generate(
    root: Path,
    size: int = 32,
    patches: int = 2,
    seasons: tuple[str, ...] = SEASONS,
    scenes: tuple[int, ...] | None = None,
    compress: str | None = None,
) -> Path:
    """Write the fake copy under ``root`` and return it (``scenes``: per season, default (1, hold-out))."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    root = Path(root)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for si, season in enumerate(seasons):
        for k in scenes or (1, HOLDOUT[season]):
            width = size * (patches + 1) // 2 + size
            field = scene_field(500 * si + k, size, width)
            rng = np.random.default_rng(k + si)
            for j in range(1, patches + 1):
                off = (j - 1) * size // 2
                win = field[:, off : off + size]
                transform = Affine(10.0, 0.0, 390000.0 + 10.0 * off + 5000 * k, 0.0, -10.0, 8110000.0)
                s1 = np.stack([sar_db(win, seed=j), sar_db(win, seed=j + 99) - 7.0])
                s1[0, 0, :3] = np.nan
                rgb = opt_view(win).astype(np.float32) / 255.0 * 2500.0
                s2 = rng.integers(0, 4000, (13, size, size)).astype(np.uint16)
                s2[3], s2[2], s2[1] = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # B04, B03, B02
                lc = np.stack([(win * 16).astype(np.uint16) + 1] * 4)
                for src, arr in (("s1", s1), ("s2", s2), ("lc", lc)):
                    path = root / season / f"{src}_{k}" / f"{season}_{src}_{k}_p{j}.tif"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    profile = dict(
                        driver="GTiff",
                        width=size,
                        height=size,
                        count=arr.shape[0],
                        dtype=arr.dtype,
                        crs=CRS.from_epsg(32737),
                        transform=transform,
                    )
                    if compress:
                        profile["compress"] = compress
                    with rasterio.open(path, "w", **profile) as dst:
                        dst.write(arr)
                split = "test" if k == HOLDOUT.get(season) else "train"
                lists[split].append(f"{season}_s2_{k}_p{j}.tif")
    for split, names in lists.items():
        (root / f"{split}_list.txt").write_text("".join(f"{n}\n" for n in names))
    return root


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
